"""The recorder kind: a flight recorder that keeps the newest syscalls of each container in the kernel.

A recorder is not a run: `start` leaves it recording in the background (in a recorder process on this
host, or in the node pod of a cluster), `show` reads what it holds now, `stop` ends it. Here is its
kernel side on one host (`KernelRecorder`: one slot per recorded mount namespace, see
bpf/traceloop/program.bpf.c) and what the front ends ask of the kind.
"""

from __future__ import annotations

import ctypes as C
import mmap
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from gadgetbook.errors import GadgetError
from gadgetbook.kernel import libbpf
from gadgetbook.kernel.gadget import EVENTS_MAP, load_gadget, lost_events
from gadgetbook.kernel.syscalls import MAX_SYSCALLS, syscall_table
from gadgetbook.kinds.base import Kind

MAX_SLOTS, GATE_SIZE = 128, 4096  # as the BPF side sizes its maps
NAMESPACE_EVENT = "traceloop_namespace_event_type"
BIRTH, REUSED = 1, 2
BPF_MAP_TYPE_ARRAY, BPF_F_MMAPABLE, BPF_F_INNER_MAP = 2, 1 << 10, 1 << 12
EVENT_RING_BYTES = 64 << 10
VERBS = ("start", "show", "stop", "list")
# The syscall hooks by kind, as gadget.toml lists them (first choice first); `prefer` picks another.
HOOK_KINDS = ("tp_btf", "raw_tp", "tp")


@dataclass(frozen=True)
class RecorderSettings:
    """A recording's params, checked: syscall numbers to record (None: all), records per buffer, max age."""

    syscalls: tuple[int, ...] | None
    entries: int
    max_age: float


class RecorderKind(Kind):
    name = "recorder"
    terminal = "result"
    verbs = VERBS

    def columns(self) -> list[str]:
        from gadgetbook.frames.syscalls import COLUMNS

        return list(COLUMNS)

    def empty(self) -> dict:
        from gadgetbook.frames.syscalls import SyscallDecoder

        return SyscallDecoder(syscall_table()).decode(np.empty(0, dtype=self.spec.event_dtype), "", ("", "", ""), 0)

    @property
    def categorical(self) -> frozenset[str]:
        from gadgetbook.frames.syscalls import CATEGORICAL

        return CATEGORICAL

    def describe_columns(self) -> list[str]:
        lines = ["  timestamp, node, namespace, pod, container, pid, tid, comm, then:"]
        return lines + [f"  {name:<22} {meta.get('doc', '')}" for name, meta in self.spec.column_meta.items()]

    def settings(self, params: dict[str, Any]) -> RecorderSettings:
        from gadgetbook.options import parse_duration

        names = [n for n in str(params.get("syscalls") or "").split(",") if n.strip()]
        syscalls = tuple(syscall_table().resolve(names)) if names else None
        entries = int(params.get("entries", 4096))
        if entries < 16 or entries > 1 << 20 or entries & (entries - 1):
            raise GadgetError(f"--entries must be a power of two between 16 and {1 << 20} (got {entries}).")
        max_age = parse_duration(params.get("max_age") or "1h")
        return RecorderSettings(syscalls, entries, float(max_age))

    def check(self, params: dict[str, Any]) -> None:
        self.settings(params)

    def open(self, params, *, mntns_ids, pid, ring_bytes, containers, node):
        raise GadgetError(f"{self.spec.name} is a recorder: use `{self.spec.name} start|show|stop|list`.")

    def record(self, params: dict[str, Any], births: bool) -> KernelRecorder:
        """Load the recorder on this host; containers are added to it (or born into it) afterwards."""
        return KernelRecorder(self.spec, self.settings(params), births)

    # -- front ends --

    def command(self, argv: list[str], prog: str) -> Any:
        from gadgetbook.recorders.front import carry_out, parse_verb

        return carry_out(parse_verb(self.spec, argv, prog))

    def live_view(self) -> None:
        return None

    def show(self, result, table: bool = True) -> None:
        from gadgetbook.recorders.front import show_in_notebook

        show_in_notebook(result, table)

    def print_result(self, result) -> int:
        from gadgetbook.recorders.front import print_in_terminal

        return print_in_terminal(result, sys.stdout, sys.stderr)


def _preferring(groups, prefer: str):
    """The hook groups with `prefer`'s programs first (benchmarks and tests measure each alternative)."""
    from gadgetbook.kernel.loader import HookGroup

    if prefer not in HOOK_KINDS:
        raise GadgetError(f"No hook kind {prefer!r}; one of {', '.join(HOOK_KINDS)}.")
    key = lambda p: not p.startswith(prefer + "_sys_")  # noqa: E731
    return tuple(HookGroup(tuple(sorted(g.programs, key=key)), g.optional) for g in groups)


class _Buffer:
    """One slot's inner array: its fd and a read-write view of its records."""

    def __init__(self, dtype: np.dtype, entries: int) -> None:
        opts = libbpf.MapCreateOpts(sz=C.sizeof(libbpf.MapCreateOpts), map_flags=BPF_F_MMAPABLE | BPF_F_INNER_MAP)
        self.fd = libbpf.map_create(BPF_MAP_TYPE_ARRAY, b"traceloop_buf", 4, dtype.itemsize, entries, C.byref(opts))
        if self.fd < 0:
            raise GadgetError(f"Cannot create a traceloop buffer of {entries} records: {libbpf.errno_message()}.")
        size = (entries * dtype.itemsize + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        try:
            self.map = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            os.close(self.fd)
            raise
        self.records = np.ndarray(entries, dtype=dtype, buffer=self.map)

    def close(self) -> None:
        self.records = None
        self.map.close()
        os.close(self.fd)


class KernelRecorder:
    """traceloop loaded on this host: slots (a buffer, a head counter, syscall counts) per mount namespace.

    Not thread-safe: its owner (a recording) serialises calls.
    """

    def __init__(self, spec, settings: RecorderSettings, births: bool, spares: int = 8,
                 prefer: str | None = None) -> None:
        from gadgetbook.catalog.layout import named_struct
        from gadgetbook.kernel.ring import RingReader

        table = syscall_table()
        hooks = spec.hooks if prefer is None else _preferring(spec.hooks, prefer)
        self.settings = settings
        self.births = births
        self.dtype = spec.event_dtype
        rodata = {"targ_entries_mask": settings.entries - 1, "targ_births": births,
                  "targ_nr_unshare": table.number("unshare") or 0}
        self.obj = load_gadget(str(spec.object_path), hooks, rodata, ring_bytes=EVENT_RING_BYTES)
        self._buffers: dict[int, _Buffer] = {}
        self._mntns: dict[int, int] = {}  # slot -> the mount namespace it records, while it records
        self._unused = list(range(MAX_SLOTS - 1, -1, -1))
        self._spares = spares if births else 0
        self._heads_map = self._counts_map = None
        try:
            self._write_conf(settings.syscalls, table)
            self._heads_map = self._mmap("heads", MAX_SLOTS * 8)
            self._counts_map = self._mmap("counts", MAX_SLOTS * MAX_SYSCALLS * 8)
            self.heads = np.frombuffer(self._heads_map, dtype=np.uint64, count=MAX_SLOTS)
            self.counts = np.frombuffer(self._counts_map, dtype=np.uint64).reshape(MAX_SLOTS, MAX_SYSCALLS)
            self._ring = RingReader(self.obj.map_fd(EVENTS_MAP), EVENT_RING_BYTES, named_struct(spec, NAMESPACE_EVENT))
            for _ in range(self._spares):
                self._push_spare()
        except BaseException:
            self.close()
            raise

    def _mmap(self, name: str, size: int) -> mmap.mmap:
        size = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        return mmap.mmap(self.obj.map_fd(name), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

    def _write_conf(self, syscalls: tuple[int, ...] | None, table) -> None:
        fd = self.obj.map_fd("syscall_conf")
        wanted = set(syscalls) if syscalls is not None else None
        value = (C.c_uint8 * 2)()
        for nr in range(MAX_SYSCALLS):
            record = wanted is None or nr in wanted
            path = table.path_arg(nr)
            if not (record or path):
                continue
            value[0], value[1] = int(record), path
            if libbpf.map_update_elem(fd, C.byref(C.c_uint32(nr)), value, 0):
                raise GadgetError(f"Cannot configure syscall {nr}: {libbpf.errno_message()}.")

    # -- slots --

    def _new_slot(self) -> int:
        if not self._unused:
            raise GadgetError(f"traceloop records at most {MAX_SLOTS} containers at once on a host; "
                              "stop a recording first.")
        slot = self._unused.pop()
        buf = _Buffer(self.dtype, self.settings.entries)
        self.heads[slot] = 0
        self.counts[slot] = 0
        if libbpf.map_update_elem(self.obj.map_fd("buffers"), C.byref(C.c_uint32(slot)), C.byref(C.c_int(buf.fd)), 0):
            err = libbpf.errno_message()
            buf.close()
            self._unused.append(slot)
            raise GadgetError(f"Cannot install a traceloop buffer: {err}.")
        self._buffers[slot] = buf
        return slot

    def _push_spare(self) -> None:
        slot = self._new_slot()
        if libbpf.map_update_elem(self.obj.map_fd("free_slots"), None, C.byref(C.c_uint32(slot)), 0):
            raise GadgetError(f"Cannot offer a spare traceloop slot: {libbpf.errno_message()}.")

    def add(self, mntns: int) -> int:
        """Start recording a mount namespace now; returns its slot."""
        slot = self._new_slot()
        if libbpf.map_update_elem(self.obj.map_fd("recorded"), C.byref(C.c_uint64(mntns)),
                                  C.byref(C.c_uint32(slot)), 0):
            err = libbpf.errno_message()
            self._drop(slot)
            raise GadgetError(f"Cannot record mount namespace {mntns}: {err}.")
        self._mntns[slot] = mntns
        self._open_gate(mntns)
        return slot

    def born(self, slot: int) -> None:
        """The kernel gave a spare slot to a namespace at its birth: a new spare takes its place at once, so
        that a burst of births (containers starting together) does not empty the pool."""
        if len(self._buffers) < MAX_SLOTS:
            self._push_spare()

    def adopt(self, slot: int, mntns: int) -> None:
        """A namespace born with a spare slot is kept."""
        self._mntns[slot] = mntns

    def seal(self, slot: int) -> None:
        """The namespace is gone: stop writing to its slot and keep what it holds."""
        mntns = self._mntns.pop(slot, None)
        if mntns is not None:
            self._unmap(mntns, slot)

    def release(self, slot: int, mntns: int | None = None) -> None:
        """Give the slot back: its namespace is no longer recorded and its buffer is freed."""
        mntns = self._mntns.pop(slot, mntns)
        if mntns is not None:
            self._unmap(mntns, slot)
        self._drop(slot)

    def _unmap(self, mntns: int, slot: int) -> None:
        key = C.c_uint64(mntns)
        got = C.c_uint32()
        fd = self.obj.map_fd("recorded")
        if libbpf.map_lookup_elem(fd, C.byref(key), C.byref(got)) == 0 and got.value == slot:
            libbpf.map_delete_elem(fd, C.byref(key))
        self._close_gate(mntns)

    def _drop(self, slot: int) -> None:
        buf = self._buffers.pop(slot, None)
        if buf is None:
            return
        libbpf.map_delete_elem(self.obj.map_fd("buffers"), C.byref(C.c_uint32(slot)))
        buf.close()
        self._unused.append(slot)

    def _open_gate(self, mntns: int) -> None:
        libbpf.map_update_elem(self.obj.map_fd("gate"), C.byref(C.c_uint32(mntns % GATE_SIZE)),
                               C.byref(C.c_uint32(1)), 0)

    def _close_gate(self, mntns: int) -> None:
        # The gate is a hint (open where a recorded namespace may land); close it only where none does.
        bucket = mntns % GATE_SIZE
        if self.births or any(m % GATE_SIZE == bucket for m in self._mntns.values()):
            return  # births open gates in the kernel at any moment: leave them open
        libbpf.map_update_elem(self.obj.map_fd("gate"), C.byref(C.c_uint32(bucket)), C.byref(C.c_uint32(0)), 0)

    # -- reading --

    def read(self, slot: int) -> tuple[np.ndarray, int]:
        """(the slot's records in the order their syscalls began, its head: how many were ever written)."""
        buf = self._buffers[slot]
        head = int(self.heads[slot])
        size = self.settings.entries
        records = buf.records.copy()
        seq = records["seq"]
        # Valid: written (seq != 0) and among the newest `size`; older ones were overwritten.
        keep = (seq > max(0, head - size)) & (seq <= head)
        records = records[keep]
        # In time order: threads on two CPUs take their positions and their clocks in either order, so seq
        # (a record's position) can be a few nanoseconds out of step with the time its syscall began.
        return records[np.lexsort((records["seq"], records["timestamp_raw"]))], head

    def syscall_counts(self, slot: int) -> dict[int, int]:
        row = self.counts[slot]
        return {int(nr): int(row[nr]) for nr in np.flatnonzero(row)}

    def namespace_events(self) -> np.ndarray:
        """Births and reused namespace numbers the kernel told of since the last call."""
        return self._ring.read()

    def events_fd(self) -> int:
        """The event ring's fd: readable (select, epoll) when the kernel told of a birth."""
        return self.obj.map_fd(EVENTS_MAP)

    def births_missed(self) -> int:
        """New namespaces that found no spare slot."""
        return lost_events(self.obj)

    def slots(self) -> list[int]:
        return sorted(self._buffers)

    def close(self) -> None:
        self.heads = self.counts = None
        ring = getattr(self, "_ring", None)
        if ring is not None:
            ring.close()
            self._ring = None
        for m in (self._heads_map, self._counts_map):
            if m is not None:
                m.close()
        self._heads_map = self._counts_map = None
        for slot in list(self._buffers):
            self._buffers.pop(slot).close()
        self.obj.close()
