"""One gadget running on this host: load with settings and filters, read raw events, count losses, close."""

from __future__ import annotations

import ctypes as C
import os
from collections.abc import Iterable
from typing import Any

from gadgetbook.catalog.spec import GadgetSpec
from gadgetbook.errors import GadgetError
from gadgetbook.kernel import libbpf
from gadgetbook.kernel.hooks import VMLINUX_BTF
from gadgetbook.kernel.loader import BpfObject, LoadPlan

DEFAULT_RING_BYTES = 4 << 20
EVENTS_MAP, LOST_MAP, FILTER_MAP = "gadget_events", "gadget_lost", "gadget_mntns_filter"
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


def add_to_mntns_filter(obj: BpfObject, mntns_ids: Iterable[int]) -> None:
    """Containers (by mount namespace) the kernel side lets through; also while the gadget runs."""
    fd = obj.map_fd(FILTER_MAP)
    one = C.c_uint8(1)
    for m in mntns_ids:
        if libbpf.map_update_elem(fd, C.byref(C.c_uint64(m)), C.byref(one), 0):
            raise GadgetError(f"Cannot add mount namespace {m} to the filter: {libbpf.errno_message()}.")


def ring_bytes_valid(n: int) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    if n < page or n & (n - 1):
        raise GadgetError(f"The ring buffer size must be a power of two of at least {page} bytes (got {n}).")
    return n


class TraceSession:
    """A trace gadget loaded on this host, attached until `close()`."""

    def __init__(
        self,
        spec: GadgetSpec,
        params: dict[str, Any],
        *,
        mntns_ids: Iterable[int] | None = None,
        pid: int | None = None,
        ring_bytes: int = DEFAULT_RING_BYTES,
    ) -> None:
        check_privileges()
        self.spec = spec
        self.ring_bytes = ring_bytes_valid(ring_bytes)
        rodata: dict[str, int | bool] = spec.rodata(params)
        rodata["gadget_filter_by_mntns"] = mntns_ids is not None
        rodata["gadget_filter_pid"] = pid or 0
        plan = LoadPlan(groups=spec.hooks, rodata=rodata, max_entries={EVENTS_MAP: self.ring_bytes})
        # Load without attaching, fill the filter, then attach: no unfiltered event slips through.
        self.obj = BpfObject(str(spec.object_path), plan, attach=False)
        try:
            if mntns_ids is not None:
                self.add_mntns(mntns_ids)
            self.obj._attach_all(plan.groups)
        except BaseException:
            self.obj.close()
            raise
        self._ring = None

    @property
    def ring(self):
        """The ring reader; numpy is imported here, after the programs are attached."""
        if self._ring is None:
            from gadgetbook.kernel.ring import RingReader

            self._ring = RingReader(self.obj.map_fd(EVENTS_MAP), self.ring_bytes, self.spec.event_dtype)
        return self._ring

    def add_mntns(self, mntns_ids: Iterable[int]) -> None:
        add_to_mntns_filter(self.obj, mntns_ids)

    def read(self):
        return self.ring.read()

    def lost(self) -> int:
        """Events that found the ring buffer full, all CPUs together."""
        return self.obj.percpu_total(LOST_MAP)

    def close(self) -> None:
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        self.obj.close()

    def __enter__(self) -> TraceSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
