"""The profile kind: a CPU-clock perf event per online CPU runs the sampler, which unwinds each sample's
user stack in the kernel (tables from .eh_frame) and reads its Python frames; the samples arrive through
the ring buffer, and at the end the distinct stacks are named and the result is a Profile."""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections import Counter
from typing import Any

import numpy as np

from gadgetbook.errors import GadgetError
from gadgetbook.frames.coded import Coded, factorize
from gadgetbook.frames.decode import boot_to_wall_ns
from gadgetbook.frames.formats import decode_cstrings
from gadgetbook.kernel import perf
from gadgetbook.kernel.gadget import EVENTS_MAP, load_gadget
from gadgetbook.kernel.ring import RingReader
from gadgetbook.kinds.base import Kind
from gadgetbook.kinds.threaded_source import ThreadedSource

PROGRAM = "do_sample"
PERF_EVENT_IOC_DISABLE = 0x2401
STACK_COLUMNS = ("user_stack", "kernel_stack", "user_addresses", "kernel_addresses", "user_locations")
COLUMNS = ["timestamp", "node", "namespace", "pod", "container", "pid", "tid", "comm", "user_stack",
           "kernel_stack", "count", "user_addresses", "kernel_addresses", "user_locations", "mntns_id"]
RING_SECONDS = 4.0  # samples the ring holds while the reader builds unwind tables
MIN_RING, MAX_RING = 1 << 20, 64 << 20
REFRESH_SECONDS = 1.0  # at most this often a process's maps are read again (code mapped later)
# Processes first seen during a run get their tables with at most this share of one CPU, after a first
# burst: a host-wide profile must not take a core of the host it measures, and its first seconds still
# get the busiest processes' tables at once (targets known at the start are not limited).
REGISTER_SHARE = 0.1
REGISTER_BURST = 2.0  # seconds of table loading allowed before the share applies
# ... and only once they have this many samples waiting: a process seen once (a short-lived command)
# is not worth a table load; its samples say so ([truncated: unwind tables not loaded yet]).
REGISTER_AFTER = 3


class ProfileKind(Kind):
    name = "profile"
    terminal = "result"

    def columns(self) -> list[str]:
        return list(COLUMNS)

    @property
    def categorical(self) -> frozenset[str]:
        return frozenset(STACK_COLUMNS)

    def empty(self) -> dict[str, np.ndarray | Coded]:
        out: dict[str, np.ndarray | Coded] = {c: _empty_coded() for c in COLUMNS}
        return out | {"timestamp": np.zeros(0, "datetime64[ns]"), "pid": np.zeros(0, np.uint32),
                      "tid": np.zeros(0, np.uint32), "count": np.zeros(0, np.int64),
                      "mntns_id": np.zeros(0, np.uint64)}

    def check(self, params: dict[str, Any]) -> None:
        if params.get("kernel_only") and params.get("user_only"):
            raise GadgetError("--kernel-only and --user-only exclude each other; give at most one of them.")

    def open(self, params: dict[str, Any], *, mntns_ids, pid, ring_bytes, containers, node,
             raw: bool = False) -> ProfileSource:
        self.check(params)
        frequency = int(params.get("frequency", 49))
        cpus = perf.online_cpus()
        ring = ring_bytes or ring_size(len(cpus), frequency, self.spec.event_dtype.itemsize)
        obj = load_gadget(str(self.spec.object_path), self.spec.hooks, self.spec.rodata(params),
                          mntns_ids=mntns_ids, pid=pid, ring_bytes=ring)
        perf_fds: list[int] = []
        try:
            source = ProfileSource(obj, perf_fds, self.spec.event_dtype, containers, node, ring,
                                   addresses=bool(params.get("addresses")), python=not params.get("no_python"),
                                   user=not params.get("kernel_only"), raw=raw)
            # Targets known now get their unwind tables before the first sample.
            source.register_now([pid] if pid else _pids_in(mntns_ids) if mntns_ids is not None else [])
            for cpu in cpus:
                pfd = perf.open_cpu_clock(cpu, frequency)
                try:
                    obj.attach_perf_event(PROGRAM, pfd)
                except BaseException:
                    os.close(pfd)
                    raise
                perf_fds.append(pfd)  # the link owns the fd now: libbpf closes it with the link
            source.started = time.monotonic()
            source.start()
            return source
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

    def show(self, result, table: bool = True) -> None:
        result.show()

    def print_result(self, result) -> int:
        """Folded stacks on stdout unless files were asked for; warnings and the summary on stderr."""
        params = result.attrs.get("params") or {}
        if result.total and not (params.get("folded") or params.get("speedscope")):
            sys.stdout.write(result.folded())
        for warning in result.warnings:
            print(f"profile: {warning}", file=sys.stderr)
        print(result.summary(), file=sys.stderr)
        return 0 if result.total else 1


def ring_size(cpus: int, frequency: int, record: int) -> int:
    """A power of two that holds RING_SECONDS of samples from every CPU."""
    want = int(cpus * frequency * (record + 8) * RING_SECONDS)
    size = MIN_RING
    while size < want and size < MAX_RING:
        size <<= 1
    return size


def _pids_in(mntns_ids) -> list[int]:
    """Processes now in the given mount namespaces (the selected containers)."""
    wanted = set(mntns_ids)
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}/ns/mnt").st_ino in wanted:
                    out.append(int(name))
            except OSError:
                continue
    return out


class ProfileSource(ThreadedSource):
    """Drains samples while they come, registers each new process's mappings and unwind tables with the
    kernel side, reads the names of Python code objects while their processes live, and at the end
    stops sampling and hands over one batch: one row per sample, stacks named."""

    def __init__(self, obj, perf_fds: list[int], event: np.dtype, containers, name: str, ring_bytes: int,
                 addresses: bool = False, python: bool = True, user: bool = True, interval: float = 0.1,
                 raw: bool = False) -> None:
        from gadgetbook.symbols.process import UserSymbols
        from gadgetbook.symbols.stacks import SampleStacks
        from gadgetbook.symbols.unwinding import KernelUnwinding

        super().__init__(obj, name)
        self.raw = raw  # a node: the named stacks go out as one frame, with the facts of the sampling
        self._perf_fds = perf_fds
        self.containers = containers
        self.user = UserSymbols()
        self.unwinding = KernelUnwinding(obj, self.user, python=python) if user else None
        self.addresses = addresses
        shape = {f: event[f].shape[0] for f in ("user", "kernel", "py")}
        self.stacks = SampleStacks(shape["user"], shape["kernel"], shape["py"])
        self._ring = RingReader(obj.map_fd(EVENTS_MAP), ring_bytes, event)
        self.code: dict[int, Any] = {}  # pid -> CodeNames
        self._gone: set[int] = set()
        self._refreshed: dict[int, float] = {}
        # Processes waiting for their tables, with how many samples asked for them: the busiest go first.
        self._waiting: Counter[int] = Counter()
        self._refresh: set[int] = set()
        self._registered_at: dict[int, int] = {}  # pid -> CLOCK_BOOTTIME ns of its last registration
        self._tables_wanted = threading.Event()
        self._registrar = threading.Thread(target=self._register_loop, name=f"gadgetbook-{name}-tables", daemon=True)
        self._interval = interval
        self._done = False
        self.cpus = 0
        self.samples = 0
        self.warnings: list[str] = []
        self.symbolize_seconds = 0.0
        self.register_seconds = 0.0
        self.lazy_seconds = 0.0  # table loading for processes first seen during the run
        self.started = time.monotonic()
        self.stopped: float | None = None
        self._offset_ns = boot_to_wall_ns()

    def start(self) -> None:
        self.cpus = len(self._perf_fds)
        self._start()
        if self.unwinding is not None:
            self._registrar.start()

    def register_now(self, pids: list[int]) -> None:
        for pid in pids:
            self._register(pid)

    # -- the thread: samples in, processes registered, code names read --

    def _read(self) -> None:
        events = self._ring.read()
        if len(events):
            self._note(events)
        return None

    def _wait(self) -> bool:
        return self._stop.wait(self._interval)

    def _combine(self, items: list[Any]):
        return items[0]

    def _note(self, events: np.ndarray) -> None:
        from gadgetbook.symbols.stacks import END_NO_MAPPING, END_NO_PROCESS

        before = len(self.stacks)
        self.stacks.add(events)
        if self.unwinding is not None:
            pids, ends = events["pid"], events["user_end"]
            unknown = ends == END_NO_PROCESS
            if self._registered_at:
                # Samples taken before a process's tables were loaded ask for nothing; later ones mean
                # it ran a new program (exec), which drops its tables in the kernel.
                since = np.array([self._registered_at.get(p, 0) for p in pids.tolist()], dtype=np.uint64)
                unknown &= events["timestamp_raw"] > since
            waiting = np.unique(pids[unknown], return_counts=True)
            refresh = np.unique(pids[ends == END_NO_MAPPING]).tolist()
            with self._lock:
                for pid, n in zip(*(w.tolist() for w in waiting)):
                    if pid not in self._gone:
                        self._waiting[pid] += n
                now = time.monotonic()
                for pid in refresh:
                    if now - self._refreshed.get(pid, 0.0) > REFRESH_SECONDS:
                        self._refreshed[pid] = now
                        self._refresh.add(pid)
            if len(waiting[0]) or refresh:
                self._tables_wanted.set()
        self._read_code_names(before)

    def _register_loop(self) -> None:
        """Builds and loads tables one process at a time, the busiest first, beside the sample reader
        (decoding a large binary's CFI takes a while; the reader must keep draining meanwhile)."""
        try:
            while not self._stop.is_set():
                self._tables_wanted.wait(0.2)
                self._tables_wanted.clear()
                while not self._stop.is_set():
                    with self._lock:
                        busiest = self._waiting.most_common(1)
                        if busiest and busiest[0][1] >= REGISTER_AFTER:
                            pid, refresh = busiest[0][0], False
                            del self._waiting[pid]
                        elif self._refresh:
                            pid, refresh = self._refresh.pop(), True
                        else:
                            break
                    if not refresh and pid in self.unwinding.registered:
                        self.unwinding.forget(pid)  # sampled unregistered after all: it ran a new program
                    self._register(pid, refresh=refresh)
                    allowed = REGISTER_BURST + REGISTER_SHARE * (time.monotonic() - self.started)
                    if self.lazy_seconds > allowed:
                        self._stop.wait((self.lazy_seconds - allowed) / REGISTER_SHARE)
        except BaseException as exc:  # handed to the run through poll()
            self._error = exc

    def _register(self, pid: int, refresh: bool = False) -> None:
        if self.unwinding is None or pid in self._gone:
            return
        t0 = time.perf_counter()
        if not self.unwinding.register(pid, refresh=refresh):
            self._gone.add(pid)
        self._registered_at[pid] = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        spent = time.perf_counter() - t0
        self.register_seconds += spent
        if self._registrar.is_alive():
            self.lazy_seconds += spent

    def _read_code_names(self, since: int) -> None:
        from gadgetbook.symbols.python import CodeNames

        if self.unwinding is None:
            return
        for pid, interp in list(self.unwinding.interpreters.items()):
            if interp.layout is None:
                continue
            wanted = self.stacks.code_objects(pid, since)
            if not wanted:
                continue
            names = self.code.get(pid)
            if names is None:
                names = self.code[pid] = CodeNames(pid, interp)
            names.resolve(sorted(wanted))

    def _wake(self) -> None:
        self._tables_wanted.set()  # the table builder sees the stop at once

    # -- the end: one batch of named samples --

    def finish(self) -> None:
        if self._done:
            return
        self._done = True
        self._stop_sampling()
        super().finish()  # the thread stops after a last drain
        if self._registrar.is_alive():
            self._registrar.join()
        from gadgetbook.symbols.kallsyms import kernel_symbols
        from gadgetbook.symbols.stacks import StackNamer

        t0 = time.perf_counter()
        # Processes whose tables never loaded still get names for the frames they have, while they live.
        for pid in set(self.stacks.pid) - set(self.user.processes) - self._gone:
            self.user.snapshot(pid)
        for maps in self.user.processes.values():
            maps.refresh_jit()
        named = StackNamer(self.user, kernel_symbols(), self.code, addresses=self.addresses).name(self.stacks)
        samples = self.stacks.samples()
        self.samples = len(samples)
        self.warnings = self._warnings(samples, named)
        batch = self._columns(samples, named)
        for names in self.code.values():
            names.close()
        self.symbolize_seconds = time.perf_counter() - t0
        if self.raw:
            # A node names the stacks where the binaries are and sends them with the sampling's facts;
            # the client names the pods.
            from gadgetbook.protocol import Frame

            batch = Frame({"attrs": self.attrs()}, batch, mntns=batch["mntns_id"])
        with self._lock:
            self._items.append(batch)

    def _warnings(self, samples: np.ndarray, named: dict[str, np.ndarray]) -> list[str]:
        """One sentence per process whose stacks could not be read in full: how many samples ended early
        and the commonest reason (the marker frame), with what registering it could not do."""
        from gadgetbook.symbols.stacks import END_COMPLETE, END_NO_PROCESS, END_NOT_ASKED

        said = dict(self.unwinding.warnings) if self.unwinding is not None else {}
        if len(samples):
            ends = np.asarray(self.stacks.user_end, dtype=np.int64)[samples["stack"]]
            early = ~np.isin(ends, [END_COMPLETE, END_NOT_ASKED, END_NO_PROCESS])
            for pid in np.unique(samples["pid"][early]).tolist():
                mine = samples["pid"] == pid
                stacks = samples["stack"][mine & early]
                markers = Counter(named["user_stack"][s].split(";", 1)[0] for s in stacks.tolist())
                top, _ = markers.most_common(1)[0]
                line = f"{len(stacks):,} of {int(mine.sum()):,} samples end early, most with {top}"
                said[pid] = f"{said[pid]}; {line}" if pid in said else line
        comms = {int(p): c.decode(errors="replace").rstrip("\0") for p, c in zip(samples["pid"], samples["comm"])}
        return [f"process {pid} ({comms.get(pid, '?')}): {text}." for pid, text in sorted(said.items())]

    def _stop_sampling(self) -> None:
        for fd in self._perf_fds:
            try:
                fcntl.ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)
            except OSError:
                pass  # noqa: S110 - an fd already gone samples nothing either
        self.stopped = time.monotonic()

    def _columns(self, samples: np.ndarray, named: dict[str, np.ndarray]) -> dict[str, np.ndarray | Coded]:
        n = len(samples)
        codes, uniq = factorize(samples["mntns_id"])
        names = self.containers.names(uniq.tolist())
        out: dict[str, np.ndarray | Coded] = {
            "timestamp": (samples["time"].astype(np.int64) + self._offset_ns).view("datetime64[ns]"),
            "node": Coded(np.zeros(n, dtype=np.int32), np.array([self.name], dtype=object)),
        }
        for i, key in enumerate(("namespace", "pod", "container")):
            out[key] = _coded([t[i] for t in names], codes)
        out["pid"] = samples["pid"]
        out["tid"] = samples["tid"]
        out["comm"] = decode_cstrings(samples["comm"], padded=True) if n else _empty_coded()
        stack = samples["stack"]
        for key in STACK_COLUMNS:
            out[key] = _coded(named[key].tolist(), stack)
        out["count"] = np.ones(n, dtype=np.int64)
        out["mntns_id"] = samples["mntns_id"]
        return {k: out[k] for k in COLUMNS}

    @property
    def seconds(self) -> float:
        return (self.stopped or time.monotonic()) - self.started

    def attrs(self) -> dict[str, object]:
        """Facts for the result's attrs: how long and on how many CPUs it sampled, what naming took, and
        one warning per process whose stacks could not be read in full."""
        unw = self.unwinding
        return {"seconds": round(self.seconds, 3), "cpus": self.cpus, "samples": self.samples,
                "symbolize_seconds": round(self.symbolize_seconds, 3),
                "register_seconds": round(self.register_seconds, 3),
                "unwind_table_bytes": unw.table_bytes if unw else 0,
                "warnings": list(self.warnings)}

    def _release(self) -> None:
        self._stop.set()
        if self._registrar.is_alive():
            self._registrar.join()
        self._perf_fds = []
        self._ring.close()


def _empty_coded() -> Coded:
    return Coded(np.zeros(0, np.int32), np.zeros(0, dtype=object))


def _coded(values: list[str], index: np.ndarray) -> Coded:
    """values[index] as codes into the distinct values."""
    seen: dict[str, int] = {}
    remap = np.array([seen.setdefault(v, len(seen)) for v in values], dtype=np.int32)
    cats = np.empty(len(seen), dtype=object)
    cats[:] = list(seen)
    return Coded(remap[index] if len(index) and len(remap) else np.zeros(len(index), np.int32), cats)
