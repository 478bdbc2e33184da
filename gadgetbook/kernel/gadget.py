"""The user side of bpf/include/gadget.h: load a gadget's object with its settings and filters, then attach.

Every kind of gadget starts the same way: write the params and filters into .rodata, size the ring
buffer, load, fill the container filter, and only then attach, so no unfiltered event slips through.
"""

from __future__ import annotations

import ctypes as C
import os
from collections.abc import Iterable, Mapping, Sequence

from gadgetbook.errors import GadgetError
from gadgetbook.kernel import libbpf
from gadgetbook.kernel.btf import Btf, BtfError
from gadgetbook.kernel.hooks import VMLINUX_BTF, tracefs
from gadgetbook.kernel.loader import BpfObject, HookGroup, LoadPlan

DEFAULT_RING_BYTES = 4 << 20
EVENTS_MAP, LOST_MAP, FILTER_MAP = "gadget_events", "gadget_lost", "gadget_mntns_filter"
FILTER_BY_MNTNS, FILTER_PID = "gadget_filter_by_mntns", "gadget_filter_pid"
WAKEUP_BYTES = "gadget_wakeup_bytes"
# The record that takes the ring buffer past 1/WAKEUP_SHARE full wakes the reader (below it the reader's
# timer drains alone): a burst keeps 15/16 of the ring as room while the reader comes, which is what
# matters when the reader waits for a CPU on a busy machine; at 4 MiB that is one wakeup per 256 KiB
# of events, never one per event.
WAKEUP_SHARE = 16
_CAP_SYS_ADMIN, _CAP_PERFMON, _CAP_BPF = 21, 38, 39


def check_privileges() -> None:
    """Fail early, in one sentence, where eBPF cannot be loaded at all."""
    if not os.path.exists(VMLINUX_BTF):
        raise GadgetError(
            f"This kernel has no BTF ({VMLINUX_BTF} is missing); gadgetbook's CO-RE gadgets need a kernel "
            "built with CONFIG_DEBUG_INFO_BTF=y."
        )
    with open("/proc/self/status") as f:
        caps = next((int(line.split()[1], 16) for line in f if line.startswith("CapEff:")), 0)
    has = lambda bit: bool(caps >> bit & 1)  # noqa: E731
    if not (has(_CAP_SYS_ADMIN) or (has(_CAP_BPF) and has(_CAP_PERFMON))):
        raise GadgetError("Running gadgets needs root (or CAP_BPF and CAP_PERFMON); run again with sudo.")


def ring_bytes_valid(n: int) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    if n < page or n & (n - 1):
        raise GadgetError(f"The ring buffer size must be a power of two of at least {page} bytes (got {n}).")
    return n


def add_to_mntns_filter(obj: BpfObject, mntns_ids: Iterable[int]) -> None:
    """Containers (by mount namespace) the kernel side lets through; also while the gadget runs."""
    fd = obj.map_fd(FILTER_MAP)
    one = C.c_uint8(1)
    for m in mntns_ids:
        if libbpf.map_update_elem(fd, C.byref(C.c_uint64(m)), C.byref(one), 0):
            raise GadgetError(f"Cannot add mount namespace {m} to the filter: {libbpf.errno_message()}.")


def load_gadget(path: str, hooks: Sequence[HookGroup], rodata: Mapping[str, int | bool], *,
                mntns_ids: Iterable[int] | None = None, pid: int | None = None,
                ring_bytes: int | None = None, max_entries: Mapping[str, int] | None = None,
                events_map: str = EVENTS_MAP) -> BpfObject:
    """A gadget object loaded with `rodata` and the target filters, its container filter filled, attached.

    `mntns_ids` None traces every container; `pid` limits to one process; `ring_bytes` sizes the
    ring buffer `events_map` (kinds that never write it keep it at one page). Only the filter settings
    and maps the object declares are written (a program of one's own may leave gadget.h out), and a
    target the object cannot filter on is refused. Programs on perf events are left for the caller to
    attach. On any failure nothing stays loaded.
    """
    check_privileges()
    tracefs()  # libbpf finds tracepoint ids there: mounted now where nobody did (a node pod)
    rodata_names, map_names = _declared(path)
    settings = dict(rodata)
    for setting, wanted, what in ((FILTER_BY_MNTNS, mntns_ids is not None, "containers"),
                                  (FILTER_PID, pid, "one process")):
        if setting in rodata_names:
            settings[setting] = bool(wanted) if setting == FILTER_BY_MNTNS else int(wanted or 0)
        elif wanted:
            raise GadgetError(
                f"{os.path.basename(path).split('.')[0]} cannot be limited to {what}: it does not use gadget.h's "
                'filter; #include "gadget.h" and return early when gadget_should_discard() is true.')
    if WAKEUP_BYTES in rodata_names:
        settings[WAKEUP_BYTES] = ring_bytes // WAKEUP_SHARE if ring_bytes else 0
    sizes = dict(max_entries or {})
    if events_map in map_names:
        sizes[events_map] = ring_bytes_valid(ring_bytes) if ring_bytes else os.sysconf("SC_PAGE_SIZE")
    plan = LoadPlan(groups=hooks, rodata=settings, max_entries=sizes)
    obj = BpfObject(path, plan, attach=False)
    try:
        if mntns_ids is not None:
            add_to_mntns_filter(obj, mntns_ids)
        obj.attach_all(plan.groups)
    except BaseException:
        obj.close()
        raise
    return obj


def _declared(path: str) -> tuple[set[str], set[str]]:
    """The .rodata variables and the maps an object declares, from its BTF."""
    try:
        btf = Btf.from_file(path)
    except BtfError as exc:
        raise GadgetError(f"Cannot read the BPF object {path} ({exc}); it must be built with -g (BTF).") from None
    try:
        return btf.declared(".rodata"), set(btf.map_definitions())
    finally:
        btf.close()


def lost_events(obj: BpfObject) -> int:
    """What the gadget counted as lost (a full ring buffer or map), all CPUs together."""
    return obj.percpu_total(LOST_MAP)
