"""perf_event_open(2) through ctypes: a CPU-clock sampling event on each online CPU."""

from __future__ import annotations

import ctypes as C
import os
import platform

from gadgetbook.errors import GadgetError

PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_CPU_CLOCK = 0
PERF_FLAG_FD_CLOEXEC = 1 << 3
_ATTR_FREQ = 1 << 10  # bit 10 of the attr flags: sample_freq is a frequency, not a period
_SYSCALL = {"x86_64": 298, "aarch64": 241, "arm64": 241}
_libc = C.CDLL(None, use_errno=True)
_libc.syscall.restype = C.c_long


class PerfEventAttr(C.Structure):
    """struct perf_event_attr up to the fields set here; the size field says how much the kernel reads."""

    _fields_ = [
        ("type", C.c_uint32),
        ("size", C.c_uint32),
        ("config", C.c_uint64),
        ("sample_freq", C.c_uint64),
        ("sample_type", C.c_uint64),
        ("read_format", C.c_uint64),
        ("flags", C.c_uint64),
        ("rest", C.c_uint8 * 80),
    ]


def online_cpus() -> list[int]:
    """CPU numbers from /sys/devices/system/cpu/online ("0-3,6")."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    cpus: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def max_sample_rate() -> int | None:
    """The kernel's ceiling for sampling frequencies (kernel.perf_event_max_sample_rate)."""
    try:
        with open("/proc/sys/kernel/perf_event_max_sample_rate") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def open_cpu_clock(cpu: int, frequency: int) -> int:
    """A CPU-clock event sampling every task on `cpu` `frequency` times a second; returns its fd."""
    nr = _SYSCALL.get(platform.machine())
    if nr is None:
        raise GadgetError(f"profile does not know perf_event_open's number on {platform.machine()}.")
    attr = PerfEventAttr()
    attr.type = PERF_TYPE_SOFTWARE
    attr.size = C.sizeof(PerfEventAttr)
    attr.config = PERF_COUNT_SW_CPU_CLOCK
    attr.sample_freq = frequency
    attr.flags = _ATTR_FREQ
    fd = _libc.syscall(nr, C.byref(attr), -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)
    if fd < 0:
        err = C.get_errno()
        ceiling = max_sample_rate()
        if err == 22 and ceiling and frequency > ceiling:  # EINVAL
            raise GadgetError(f"--frequency {frequency} is above this kernel's limit of {ceiling} samples per second.")
        raise GadgetError(f"Cannot open a CPU-clock perf event on CPU {cpu}: {os.strerror(err)} (errno {err}).")
    return fd
