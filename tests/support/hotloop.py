"""The frame-pointer test program (hotloop.c): compiled once per test session, run for a set time."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("hotloop.c")
FLAGS = ["-O1", "-fno-omit-frame-pointer", "-fno-inline"]


def build(directory: Path, name: str = "hotloop", strip: bool = False, static: bool = False) -> Path:
    """Compile hotloop.c into directory; `strip` removes every symbol table but .dynsym; `static` links
    libc in (for a container whose root filesystem has none)."""
    out = Path(directory) / name
    subprocess.run(["gcc", *FLAGS, *(["-static"] if static else []), "-o", str(out), str(SOURCE)], check=True)
    if strip:
        subprocess.run([shutil.which("strip") or "strip", "-s", str(out)], check=True)
    return out


def start(binary: Path, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([str(binary), str(seconds)])


def user_share(samples, needle: str) -> float:
    """The share of a profile's samples with a user stack whose stack contains `needle`."""
    with_user = samples[samples.user_stack != ""]
    return with_user["count"][with_user.user_stack.str.contains(needle, regex=False)].sum() / with_user["count"].sum()
