"""What hooks the running kernel offers: tracepoints, BTF tracepoints, fentry and kprobes."""

from __future__ import annotations

import functools
import os
import subprocess

from gadgetbook.kernel.btf import FUNC, TYPEDEF, Btf, BtfError

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
_TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def tracefs() -> str | None:
    """Where tracefs is mounted; mounted at /sys/kernel/tracing first if it is nowhere yet.

    libbpf finds tracepoint ids there; a host that never mounted it (a fresh
    VM, a container with /sys bound in) would otherwise offer no tracepoints.
    """
    for path in _TRACEFS:
        if os.path.isdir(os.path.join(path, "events")):
            return path
    if os.path.isdir(_TRACEFS[0]) and os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tracefs", "nodev", _TRACEFS[0]], capture_output=True, check=False)
        if os.path.isdir(os.path.join(_TRACEFS[0], "events")):
            return _TRACEFS[0]
    return None


@functools.cache
def _vmlinux() -> Btf | None:
    try:
        return Btf.from_file(VMLINUX_BTF)
    except BtfError:
        return None


def _btf_has(name: str, kind: int) -> bool:
    btf = _vmlinux()
    if btf is None:
        return False
    try:
        btf.find(name, kind)
        return True
    except BtfError:
        return False


@functools.cache
def _kprobes_enabled() -> bool:
    root = tracefs()
    return bool(root) and os.path.exists(os.path.join(root, "kprobe_events"))


@functools.cache
def _kallsyms() -> frozenset[str]:
    try:
        with open("/proc/kallsyms") as f:
            return frozenset(line.split()[2] for line in f)
    except OSError:
        return frozenset()


def available(section: str) -> bool:
    """True when the hook named by a program's ELF section exists on this kernel."""
    kind, _, rest = section.partition("/")
    if kind in ("tracepoint", "tp"):
        root = tracefs()
        return bool(root) and os.path.isdir(os.path.join(root, "events", rest))
    if kind in ("raw_tracepoint", "raw_tp", "tp_btf"):
        return _btf_has(f"btf_trace_{rest}", TYPEDEF)
    if kind in ("fentry", "fexit", "fmod_ret", "lsm"):
        return _btf_has(rest, FUNC)
    if kind in ("kprobe", "kretprobe"):
        return _kprobes_enabled() and rest in _kallsyms()
    # perf_event, iter, uprobe and the like need no named hook.
    return True
