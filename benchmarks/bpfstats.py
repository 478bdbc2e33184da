"""The kernel's own count of each BPF program's runs and run time (BPF_ENABLE_STATS), for the benchmarks.

What a gadget's programs cost per call, measured where it is spent: unlike a traced program's wall or CPU
time, it does not move with whatever else the machine runs. Statistics stay on only while `kernel_stats()`
holds its file descriptor (the kernel counts for every program meanwhile, a few tens of ns per run), so they
are taken in runs of their own, apart from the timed ones.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import subprocess
from collections.abc import Iterator

_BPF_STATS_RUN_TIME = 0


@contextlib.contextmanager
def kernel_stats() -> Iterator[None]:
    lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    fd = lib.bpf_enable_stats(_BPF_STATS_RUN_TIME)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "BPF_ENABLE_STATS failed")
    try:
        yield
    finally:
        os.close(fd)


def program_runs(obj) -> dict[str, tuple[int, int]]:
    """(runs, nanoseconds) so far of each attached program of a loaded gadget object."""
    out = {}
    for name in obj.attached:
        with open(f"/proc/self/fdinfo/{obj.program_fd(name)}") as f:
            prog_id = next(int(line.split()[1]) for line in f if line.startswith("prog_id:"))
        info = json.loads(subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)],
                                         capture_output=True, text=True, check=True).stdout)
        out[name] = (int(info.get("run_cnt", 0)), int(info.get("run_time_ns", 0)))
    return out
