"""Debian's kernel headers linked for the running kernel while a %%bcc test runs, as PLATFORM.md describes
(`build` -> the flavour's folder, `source` -> the common folder under /lib/modules/$(uname -r)), and removed
afterwards: the .deb files (tests/support/kernel_headers.sh keeps them in the cache) are unpacked into a
temporary directory, never installed; only the links and the directories made for them are added, and a
lock keeps two test runs from linking at once."""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

CACHE = Path(os.environ.get("GADGETBOOK_CACHE", "/var/cache/gadgetbook")) / "kernel-headers"
LOCK = "/tmp/gadgetbook-kernel-headers.lock"
SCRIPT = Path(__file__).with_name("kernel_headers.sh")


def modules_dir() -> Path:
    return Path("/lib/modules") / platform.release()


@contextmanager
def headers_lock():
    with open(LOCK, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


PREFIX = "gadgetbook-headers-"


def clear_stale_links() -> None:
    """Links (and the folders made for them) that a killed test run left behind: they point into a temporary
    folder of ours, which nothing else makes. Called with the lock held, so no other run is using them."""
    target = modules_dir()
    tmp = Path(tempfile.gettempdir())
    stale = []
    for link in (target / "build", target / "source"):
        if link.is_symlink() and Path(os.readlink(link)).is_relative_to(tmp):
            root = tmp / Path(os.readlink(link)).relative_to(tmp).parts[0]
            if root.name.startswith(PREFIX):
                stale.append((link, root))
    for link, root in stale:
        link.unlink()
        shutil.rmtree(root, ignore_errors=True)
    if stale and not any(target.iterdir()):
        target.rmdir()


@contextmanager
def no_headers():
    """The real absence of headers for the running kernel, held for the test's length."""
    with headers_lock():
        clear_stale_links()
        build = modules_dir() / "build"
        assert not build.exists(), f"{build} exists on this host: the no-headers test cannot see an absence"
        yield build


@contextmanager
def debian_headers():
    """Yields the release the linked headers are for; removes the links, the directories it made and the
    unpacked files afterwards, whatever happens."""
    if not list(CACHE.glob("linux-headers-*-common_*.deb")):
        subprocess.run(["bash", str(SCRIPT)], check=True)
    with headers_lock():
        clear_stale_links()
        target = modules_dir()
        assert not (target / "build").exists(), f"{target}/build exists already; it is not this test's to replace"
        root = Path(tempfile.mkdtemp(prefix=PREFIX))
        made: list[Path] = []
        try:
            for deb in sorted(CACHE.glob("*.deb")):
                subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            src = root / "usr" / "src"
            common = next(p for p in src.iterdir() if p.name.endswith("-common"))
            flavour = next(p for p in src.iterdir() if p.name.startswith("linux-headers-") and p != common)
            missing = []
            for d in (target, *target.parents):
                if d.exists():
                    break
                missing.append(d)
            for d in reversed(missing):
                d.mkdir()
                made.append(d)
            for name, to in (("build", flavour), ("source", common)):
                (target / name).symlink_to(to)
                made.append(target / name)
            yield flavour.name.removeprefix("linux-headers-")
        finally:
            for path in reversed(made):
                if path.is_symlink():
                    path.unlink()
                else:
                    path.rmdir()
            shutil.rmtree(root, ignore_errors=True)
