"""Busybox containers under podman for labs: a root filesystem built from the host's static busybox, no image pull."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from gadgetbook.errors import GadgetError

# What podman needs on hosts of this kind: runc and the cgroupfs manager (no systemd), explicit
# ulimits, a file event log. Used only when the user has not pointed CONTAINERS_CONF elsewhere.
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
BUSYBOX = "/bin/busybox"


@functools.cache
def podman_env() -> dict[str, str]:
    """The environment podman runs with: CONTAINERS_CONF as set, or the lab's own settings."""
    if os.environ.get("CONTAINERS_CONF"):
        return dict(os.environ)
    conf = Path(tempfile.gettempdir()) / "gadgetbook-containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(*args: str, timeout: float = 60) -> str:
    if not shutil.which("podman"):
        raise GadgetError("podman is not installed; the lab's containers need it (Debian: apt-get install podman).")
    done = subprocess.run(["podman", *args], capture_output=True, text=True, env=podman_env(), timeout=timeout)
    if done.returncode:
        raise GadgetError(f"podman {args[0]} failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}.")
    return done.stdout.strip()


def busybox_rootfs(parent: str | None = None) -> str:
    """A root filesystem with the host's static busybox and its applets; remove it with shutil.rmtree."""
    if not os.path.exists(BUSYBOX):
        raise GadgetError(f"{BUSYBOX} is missing; install a static busybox (Debian: apt-get install busybox-static).")
    root = Path(tempfile.mkdtemp(prefix="gadgetbook-rootfs-", dir=parent))
    for d in ("bin", "tmp", "proc", "sys", "dev", "etc", "www"):
        (root / d).mkdir()
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    (root / "www" / "index.html").write_text("hello from the lab\n")
    # Where the host's /usr is mounted (PYTHON_VOLUMES), its programs find their libraries.
    (root / "lib").symlink_to("usr/lib")
    (root / "lib64").symlink_to("usr/lib64")
    return str(root)


def python_volumes() -> list[tuple[str, str]]:
    """Mounts that give a busybox container the host's Python and dnspython (read-only): `python3` then runs."""
    import dns

    return [("/usr", "/usr"), (os.path.dirname(dns.__file__), "/opt/gadgetbook-lab/dns")]


PYTHON_ENV = {"PYTHONPATH": "/opt/gadgetbook-lab", "PYTHONDONTWRITEBYTECODE": "1"}


class LabContainer:
    """One podman container without a network of its own (join it to a LabNetwork); `remove()` deletes it by id."""

    def __init__(self, rootfs: str, name: str, script: str, labels: dict[str, str] | None = None, *,
                 volumes: list[tuple[str, str]] = (), env: dict[str, str] | None = None, keep: bool = False,
                 options: Sequence[str] = ()) -> None:
        # `keep`: left in place when it exits (its exit code and name stay known) until remove().
        # `options`: more `podman run` flags, such as ["--cap-drop", "ALL", "--cap-add", "CHOWN"].
        cmd = ["run", "-d", *(() if keep else ("--rm",)), "--network", "none", "--name", name, *options]
        for k, v in (labels or {}).items():
            cmd += ["--label", f"{k}={v}"]
        for host, inside in volumes:
            cmd += ["-v", f"{host}:{inside}:ro"]
        for k, v in (env or {}).items():
            cmd += ["-e", f"{k}={v}"]
        cmd += ["--rootfs", rootfs, "/bin/sh", "-c", script]
        self.name = name
        self.labels = dict(labels or {})
        self.id = podman(*cmd)
        try:
            self.pid = int(podman("inspect", "--format", "{{.State.Pid}}", self.id))
        except BaseException:
            self.remove()
            raise

    def exec(self, *argv: str) -> str:
        return podman("exec", self.id, *argv)

    def wait(self) -> int:
        """Its exit code, once it has exited (a kept container)."""
        return int(podman("wait", self.id, timeout=300).splitlines()[-1])

    def remove(self) -> None:
        remove_all([self])

    def __repr__(self) -> str:
        return f"LabContainer({self.name!r}, id={self.id[:12]}, pid={getattr(self, 'pid', None)})"


def remove_all(containers: Iterable[LabContainer]) -> None:
    """Remove containers by id, in one podman call, and wait (5 s at most) until their processes are gone."""
    containers = list(containers)
    if not containers:
        return
    subprocess.run(["podman", "rm", "-f", "-t", "0", *(c.id for c in containers)], capture_output=True,
                   env=podman_env(), check=False)
    pids = [pid for c in containers if (pid := getattr(c, "pid", None))]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in pids):
        time.sleep(0.05)  # until the runtime has really gone


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
