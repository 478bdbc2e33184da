"""The profile kind: a CPU-clock perf event per online CPU runs the sampler, which counts stacks in the
kernel; at the end the counts are read, the stacks named, and the result is a Profile (flame graphs)."""

from __future__ import annotations

import ctypes as C
import fcntl
import os
import sys
import time
from typing import Any

import numpy as np

from gadgetbook.errors import GadgetError
from gadgetbook.frames.coded import Coded
from gadgetbook.frames.formats import decode_cstrings
from gadgetbook.kernel import libbpf, perf
from gadgetbook.kernel.gadget import load_gadget
from gadgetbook.kernel.maps import MapReader
from gadgetbook.kinds.base import Kind
from gadgetbook.kinds.threaded_source import ThreadedSource

PROGRAM, COUNTS_MAP, STACKS_MAP = "do_sample", "counts", "stacks"
MAX_STACK_DEPTH = 127
PERF_EVENT_IOC_DISABLE = 0x2401
COLUMNS = ["node", "namespace", "pod", "container", "pid", "comm", "user_stack", "kernel_stack", "count",
           "user_addresses", "kernel_addresses", "mntns_id"]


class ProfileKind(Kind):
    name = "profile"
    terminal = "result"

    def columns(self) -> list[str]:
        return list(COLUMNS)

    def empty(self) -> dict[str, np.ndarray | Coded]:
        strings = {c: np.zeros(0, dtype=object) for c in COLUMNS}
        return strings | {"pid": np.zeros(0, np.uint32), "count": np.zeros(0, np.int64),
                          "mntns_id": np.zeros(0, np.uint64)}

    def check(self, params: dict[str, Any]) -> None:
        if params.get("kernel_only") and params.get("user_only"):
            raise GadgetError("--kernel-only and --user-only exclude each other; give at most one of them.")

    def open(self, params: dict[str, Any], *, mntns_ids, pid, ring_bytes, containers, node,
             raw: bool = False) -> ProfileSource:
        self.check(params)
        frequency = int(params.get("frequency", 49))
        obj = load_gadget(str(self.spec.object_path), self.spec.hooks, self.spec.rodata(params),
                          mntns_ids=mntns_ids, pid=pid)
        perf_fds: list[int] = []
        try:
            for cpu in perf.online_cpus():
                pfd = perf.open_cpu_clock(cpu, frequency)
                try:
                    obj.attach_perf_event(PROGRAM, pfd)
                except BaseException:
                    os.close(pfd)
                    raise
                perf_fds.append(pfd)  # the link owns the fd now: libbpf closes it with the link
            return ProfileSource(obj, perf_fds, self.spec.event_dtype, containers, node,
                                 addresses=bool(params.get("addresses")), raw=raw)
        except BaseException:
            obj.close()
            raise

    def from_wire(self, frame, params, names, node):
        """The node named the stacks (its processes, its files); here the rows get their pods."""
        out: dict[str, np.ndarray | Coded] = {}
        for key, value in frame.columns.items():
            if isinstance(value, list):
                arr = np.empty(len(value), dtype=object)
                arr[:] = value
                value = arr
            out[key] = value
        n = len(out["pid"])
        out["node"] = Coded(np.zeros(n, dtype=np.int32), np.array([node], dtype=object))
        uniq, inverse = np.unique(out["mntns_id"], return_inverse=True)
        named = names.names(uniq.tolist())
        for i, key in enumerate(("namespace", "pod", "container")):
            out[key] = _coded([t[i] for t in named], inverse.reshape(-1))
        return {c: out[c] for c in COLUMNS}

    def result(self, df):
        from gadgetbook.frames.profile import Profile

        return Profile(df)

    def after_run(self, result) -> None:
        result.write_requested()

    def live_view(self) -> None:
        return None

    def show(self, result) -> None:
        result.show()

    def print_result(self, result) -> int:
        """Folded stacks on stdout unless files were asked for; the summary on stderr."""
        params = result.attrs.get("params") or {}
        if result.total and not (params.get("folded") or params.get("speedscope")):
            sys.stdout.write(result.folded())
        print(result.summary(), file=sys.stderr)
        return 0 if result.total else 1


class ProfileSource(ThreadedSource):
    """Snapshots the maps of every process seen in the counts while it runs (so processes that exit
    before the end still get names), then at the end stops sampling, reads the counts and hands over
    one batch of named stacks: one row per process and stack, with its count."""

    def __init__(self, obj, perf_fds: list[int], key: np.dtype, containers, name: str, addresses: bool = False,
                 snapshot_interval: float = 0.2, raw: bool = False) -> None:
        from gadgetbook.symbols.process import UserSymbols

        super().__init__(obj, name)
        self.raw = raw  # a node: the named stacks go out as one frame, with the facts of the sampling
        self._perf_fds = perf_fds
        self._counts = MapReader(obj.map_fd(COUNTS_MAP), obj.map_max_entries(COUNTS_MAP), key, np.dtype(np.uint64),
                                 name="profile's counts")
        self.containers = containers
        self.user = UserSymbols()
        self.addresses = addresses
        self.cpus = len(perf_fds)
        self.samples = 0
        self.symbolize_seconds = 0.0
        self.started = time.monotonic()
        self.stopped: float | None = None
        self._gone: set[int] = set()
        self._interval = snapshot_interval
        self._done = False
        self._start()

    # -- the thread: note processes while they live --

    def _read(self) -> None:
        try:
            keys, _ = self._counts.read()
        except OSError:
            return None  # a process vanishing mid-read: the next round catches up
        for pid in np.unique(keys["pid"]).tolist():
            if pid not in self.user.processes and pid not in self._gone and not self.user.snapshot(pid):
                self._gone.add(pid)
        return None

    def _wait(self) -> bool:
        return self._stop.wait(self._interval)

    def _combine(self, items: list[Any]):
        return items[0]

    # -- the end: one batch of named stacks --

    def finish(self) -> None:
        if self._done:
            return
        self._done = True
        self._stop_sampling()
        super().finish()  # the thread stops after a last look at the processes still alive
        from gadgetbook.symbols.kallsyms import kernel_symbols
        from gadgetbook.symbols.stacks import StackNamer

        t0 = time.perf_counter()
        keys, counts = self._counts.read()
        ids = set(keys["user_stack_id"].tolist()) | set(keys["kernel_stack_id"].tolist())
        stacks = self._read_stacks(sorted(ids))
        rows = StackNamer(self.user, kernel_symbols(), addresses=self.addresses).rows(keys, counts, stacks)
        self.samples = int(rows["count"].sum())
        self.symbolize_seconds = time.perf_counter() - t0
        batch = self._columns(rows)
        if self.raw:
            from gadgetbook.protocol import Frame

            batch = Frame({"attrs": self.attrs()}, batch, mntns=batch["mntns_id"])
        with self._lock:
            self._items.append(batch)

    def _stop_sampling(self) -> None:
        for fd in self._perf_fds:
            try:
                fcntl.ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)
            except OSError:
                pass  # noqa: S110 - an fd already gone samples nothing either
        self.stopped = time.monotonic()

    def _read_stacks(self, ids: list[int]) -> dict[int, np.ndarray]:
        """Addresses of each stack id, innermost frame first."""
        fd = self.obj.map_fd(STACKS_MAP)
        buf = np.zeros(MAX_STACK_DEPTH, dtype=np.uint64)
        key = C.c_uint32()
        out = {}
        for sid in ids:
            if sid < 0:
                continue
            key.value = sid
            if libbpf.map_lookup_elem(fd, C.byref(key), buf.ctypes.data) == 0:
                depth = int(np.argmin(buf != 0)) if buf[-1] == 0 else MAX_STACK_DEPTH
                out[sid] = buf[:depth].copy()
        return out

    def _columns(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray | Coded]:
        n = len(rows["pid"])
        uniq, inverse = np.unique(rows["mntns_id"], return_inverse=True)
        named = self.containers.names(uniq.tolist())
        out: dict[str, np.ndarray | Coded] = {
            "node": Coded(np.zeros(n, dtype=np.int32), np.array([self.name], dtype=object)),
        }
        for i, key in enumerate(("namespace", "pod", "container")):
            out[key] = _coded([t[i] for t in named], inverse.reshape(-1))
        out["pid"] = rows["pid"]
        out["comm"] = decode_cstrings(rows["comm"], padded=True) if n else Coded(
            np.zeros(0, np.int32), np.zeros(0, dtype=object))
        for key in ("user_stack", "kernel_stack", "count", "user_addresses", "kernel_addresses", "mntns_id"):
            out[key] = rows[key]
        return out

    @property
    def seconds(self) -> float:
        return (self.stopped or time.monotonic()) - self.started

    def attrs(self) -> dict[str, object]:
        """Facts for the result's attrs: how long and on how many CPUs it sampled, what it took to name."""
        return {"seconds": round(self.seconds, 3), "cpus": self.cpus,
                "samples": self.samples, "symbolize_seconds": round(self.symbolize_seconds, 3)}

    def _release(self) -> None:
        self._perf_fds = []


def _coded(values: list[str], index: np.ndarray) -> Coded:
    """values[index] as codes into the distinct values."""
    seen: dict[str, int] = {}
    remap = np.array([seen.setdefault(v, len(seen)) for v in values], dtype=np.int32)
    cats = np.empty(len(seen), dtype=object)
    cats[:] = list(seen)
    return Coded(remap[index] if len(index) else np.zeros(0, np.int32), cats)
