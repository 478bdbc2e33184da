"""The peers the benchmarks compare with, run in the same session: bpftrace, and bcc where it can compile.

bcc compiles its C against kernel headers. This kernel ships none; Debian's nearest headers package
(linux-headers-amd64, installed by scripts/install.sh with the test extras) splits them in two folders,
which bcc reads as one through BCC_KERNEL_SOURCE: a folder of symlinks joining both, made once in
/var/cache/gadgetbook. Nothing under /lib/modules changes. Structs read through these mismatched headers
can be wrong, so the bcc programs here read only tracepoint arguments and helpers.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

CACHE = Path("/var/cache/gadgetbook")
BCC_PYTHON = "/usr/bin/python3"
BCC_SITE = "/usr/lib/python3/dist-packages"


def has_bpftrace() -> bool:
    return shutil.which("bpftrace") is not None


def _headers() -> tuple[str, str] | None:
    """(arch-specific, common) folders of the newest Debian kernel headers installed."""
    for arch_dir in sorted(glob.glob("/usr/src/linux-headers-*-amd64"), reverse=True):
        common = arch_dir[: -len("-amd64")] + "-common"
        if os.path.isdir(common):
            return arch_dir, common
    return None


def bcc_env() -> tuple[dict[str, str] | None, str]:
    """(environment for a bcc Python process, "") or (None, why bcc cannot run here)."""
    if not os.path.exists(os.path.join(BCC_SITE, "bcc", "__init__.py")):
        return None, "python3-bpfcc is not installed"
    found = _headers()
    if found is None:
        return None, "no kernel headers (apt-get install linux-headers-amd64)"
    arch_dir, common = found
    joined = CACHE / f"bcc-headers-{os.path.basename(arch_dir)}"
    if not (joined / ".complete").exists():
        tmp = joined.with_name(joined.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # Symlinks to every file: the common tree first, the arch-specific files over it.
        subprocess.run(["cp", "-rs", f"{common}/.", f"{tmp}/"], check=True)
        subprocess.run(["cp", "-rsf", f"{arch_dir}/.", f"{tmp}/"], check=True)
        (tmp / ".complete").touch()
        shutil.rmtree(joined, ignore_errors=True)
        tmp.rename(joined)
    env = {**os.environ, "PYTHONPATH": BCC_SITE, "BCC_KERNEL_SOURCE": str(joined)}
    return env, ""


def start_bcc(script: str, *args: str) -> subprocess.Popen:
    """A bcc Python script (Debian's python3 with python3-bpfcc) that prints "ready" once attached and ends
    on SIGTERM; a RuntimeError says why bcc cannot run here."""
    env, why = bcc_env()
    if env is None:
        raise RuntimeError(why)
    proc = subprocess.Popen([BCC_PYTHON, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    if proc.stdout.readline().strip() != "ready":
        err = proc.stderr.read().strip().splitlines()
        proc.wait()
        raise RuntimeError((err or ["?"])[-1][:100])
    return proc


def stop_bcc(proc: subprocess.Popen) -> str:
    """SIGTERM, then what the script printed last."""
    proc.terminate()
    out = proc.stdout.read().strip()
    proc.wait()
    return out
