"""Programs to profile for the unwinding tests, compiled here with the flags each test names, and the
CPython interpreters this machine has (Debian's, and any others found in PATH or pyenv)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).parent
NO_FRAME_POINTERS = ["-O2"]  # Debian's defaults: gcc omits frame pointers
LEAF_WITHOUT_FRAME_POINTER = ["-O1", "-fno-omit-frame-pointer"]  # gcc still omits them in leaf functions


def build(directory: Path, source: str, name: str, flags: list[str], static: bool = False) -> Path:
    """Compile tests/support/unwind/SOURCE into directory/name."""
    out = Path(directory) / name
    compiler = "g++" if source.endswith(".cpp") else "gcc"
    cmd = [compiler, *flags, *(["-static"] if static else []), "-o", str(out), str(HERE / source)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


NO_UNWIND_TABLES = ["-O2", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-DNO_UNWIND_TABLES"]


def split_debug(binary: Path, name: str, debug_root: Path) -> Path:
    """A copy without its symbol table whose symbols sit in a separate file, at
    debug_root/usr/lib/debug/.build-id/xx/yyyy.debug as distributions ship them."""
    out = binary.with_name(name)
    shutil.copy(binary, out)
    build_id = _build_id(out)
    target = debug_root / "usr/lib/debug/.build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["objcopy", "--only-keep-debug", str(out), str(target)], check=True, capture_output=True)
    subprocess.run(["strip", "--strip-all", str(out)], check=True, capture_output=True)
    return out


def mini_debuginfo(binary: Path, name: str) -> Path:
    """A copy without its symbol table that carries its function symbols as MiniDebugInfo: an
    xz-compressed ELF in .gnu_debugdata (as Fedora and others ship binaries)."""
    out = binary.with_name(name)
    work = out.with_suffix(".mini")
    shutil.copy(binary, out)
    funcs = subprocess.run(["nm", "--format=posix", "--defined-only", str(out)], check=True, capture_output=True,
                           text=True).stdout.split("\n")
    keep = work.with_suffix(".keep")
    keep.write_text("\n".join(line.split()[0] for line in funcs if len(line.split()) > 1
                              and line.split()[1] in "Tt") + "\n")
    subprocess.run(["objcopy", "--only-keep-debug", str(out), str(work)], check=True, capture_output=True)
    subprocess.run(["objcopy", "-S", "--remove-section", ".gdb_index", "--remove-section", ".comment",
                    f"--keep-symbols={keep}", str(work)], check=True, capture_output=True)
    subprocess.run(["xz", "-f", str(work)], check=True, capture_output=True)
    subprocess.run(["strip", "--strip-all", str(out)], check=True, capture_output=True)
    subprocess.run(["objcopy", "--add-section", f".gnu_debugdata={work}.xz", str(out)], check=True,
                   capture_output=True)
    for f in (keep, Path(f"{work}.xz")):
        f.unlink(missing_ok=True)
    return out


def _build_id(binary: Path) -> str:
    notes = subprocess.run(["readelf", "-n", str(binary)], check=True, capture_output=True, text=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", notes).group(1)


DEBIAN_PYTHON = "/usr/bin/python3.11"


def pythons_any(version: str) -> str | None:
    """A CPython of any version (say 3.8, which the profiler does not read) from PATH or pyenv."""
    for path in [shutil.which(f"python{version}") or "",
                 *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")))]:
        if path and "/shims/" not in path and os.access(path, os.X_OK):
            return path
    return None


def pythons() -> dict[str, str]:
    """CPython interpreters to profile, by version: Debian's 3.11 first, then others this machine has."""
    found: dict[str, str] = {}
    candidates = [DEBIAN_PYTHON]
    for minor in range(9, 14):
        candidates.append(shutil.which(f"python3.{minor}") or "")
        candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python3.{minor}")))
    for path in candidates:
        if not path or "/shims/" in path or not os.access(path, os.X_OK):
            continue
        version = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True).stdout.strip()
        if version and version not in found:
            found[version] = path
    return found
