"""The bcc kind: a bcc program of one's own (%%bcc), compiled and run by bcc in a child process of the Python
that imports it, streaming records (perf or ring buffer) and table readings back; rows get the record
struct's fields as columns, tables come back after the run (and at every --interval).

In a cluster the cell's C travels to each node pod, whose bcc compiles it against the node's own headers; the
record's layout (bcc's, known once it has compiled) comes back in the node's STARTED message."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gadgetbook.catalog.spec import Column, GadgetSpec
from gadgetbook.errors import GadgetError
from gadgetbook.frames.coded import Coded
from gadgetbook.kinds.base import Kind
from gadgetbook.kinds.program import PlainDecoder, one_per_row, program_empty_notes
from gadgetbook.run_handle import Batch
from gadgetbook.run_tables import TableReadings, TableSource

READY_TIMEOUT = 120.0  # bcc compiles with clang on every start: seconds on a busy host


@dataclass(frozen=True, eq=False)
class BccSpec(GadgetSpec):
    """A bcc program: its C as written in the cell, and what was noticed before it ran (headers)."""

    source: str = ""
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class RecordLayout:
    """The record struct as bcc laid it out (from the child's ready frame)."""

    event_dtype: np.dtype
    event_columns: tuple[Column, ...]


def bcc_spec(source: str, name: str = "cell", warnings: tuple[str, ...] = ()) -> BccSpec:
    """The spec of a bcc program: its C, and what was noticed before it ran."""
    from gadgetbook.programs.bcc_host import CHILD
    from gadgetbook.programs.spec import BCC_PARAMS

    return BccSpec(name=name, description="a bcc program of one's own", kind="bcc", object_path=CHILD,
                   params=dict(BCC_PARAMS), hooks=(), column_meta={}, source=source, warnings=warnings)


def record_layout(record: dict) -> RecordLayout:
    fields = record["fields"]
    dtype = np.dtype({"names": [f[0] for f in fields],
                      "formats": [(f[1], tuple(f[2])) if f[2] else f[1] for f in fields],
                      "offsets": [f[3] for f in fields], "itemsize": record["size"]})
    columns = tuple(Column(field=f[0], name=f[0], dtype=f[1], shape=tuple(f[2])) for f in fields
                    if not f[0].startswith("_"))
    return RecordLayout(dtype, columns)


class BccKind(Kind):
    name = "bcc"

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._layout: RecordLayout | None = None  # known once bcc has compiled the program
        self._record: dict | None = None  # the layout as bcc's child said it (a node passes it on)
        self.node_warnings: list[str] = []  # what nodes noticed before compiling (their headers)

    @property
    def _decoder(self):
        return PlainDecoder(self._layout, "") if self._layout else None

    def columns(self) -> list[str]:
        return self._decoder.names() if self._decoder else []

    def empty(self):
        return one_per_row(self._decoder.empty()) if self._decoder else {}

    def empty_notes(self, attrs: dict[str, Any]) -> list[str]:
        return program_empty_notes(self.columns(), attrs)

    def open(self, params: dict[str, Any], *, mntns_ids, pid, ring_bytes, containers, node,
             raw: bool = False) -> BccSource:
        from gadgetbook.kernel.hooks import tracefs
        from gadgetbook.programs.bcc_host import bcc_python, kernel_headers, prelude

        # None at all: one sentence, nothing run. A node's own are another kernel's: its client hears it.
        headers = kernel_headers(node if raw else None)
        # bcc reads the layout of a TRACEPOINT_PROBE's arguments there; a node pod mounts it on first need.
        if tracefs() is None:
            raise GadgetError("This host has no tracefs (/sys/kernel/tracing), where bcc reads the tracepoints' "
                              "arguments; mount it: mount -t tracefs nodev /sys/kernel/tracing.")
        if raw and headers.mismatch:
            self.node_warnings.append(headers.mismatch)
        cgroups = None
        if mntns_ids is not None:
            cgroups = _cgroups_of(containers, mntns_ids)
            if not cgroups:
                raise GadgetError("The selected containers have no cgroup this host can see; nothing was traced.")
        names = lambda key: [n.strip() for n in str(params.get(key) or "").split(",") if n.strip()]  # noqa: E731
        config = {
            "text": prelude(cgroups is not None, pid) + self.spec.source,
            "cgroups": sorted(cgroups or ()),
            "events": str(params.get("events") or "") or None,
            "tables": names("tables") or None,
            "interval": float(params.get("interval") or 0),
            "max_events": int(params.get("max_events") or 0),
            "pages": _pages(ring_bytes),
        }
        source = BccSource(bcc_python(), config, self.spec.source, node, set(names("hist")), containers, raw)
        self._record = source.record
        if source.record is not None:
            self._layout = record_layout(source.record)
            source.decoder = PlainDecoder(self._layout, node)
        return source

    # -- in a cluster --

    def wire(self, node: str) -> dict[str, Any]:
        """The cell's C itself: each node's bcc compiles it against that node's headers."""
        return {"program": {"kind": self.name, "name": self.spec.name, "source": self.spec.source}}

    def reply(self) -> dict[str, Any]:
        """What the node says on starting: the record's layout as its bcc made it, and its warnings."""
        return {"record": self._record, "warnings": list(self.node_warnings)}

    def started(self, reply: dict[str, Any], node: str) -> None:
        """The client learns the record's layout from the first node to start (every node's bcc lays out the
        cell's struct alike), and keeps each node's warnings (they name their node)."""
        if self._layout is None and reply.get("record"):
            self._record = reply["record"]
            self._layout = record_layout(self._record)
        self.node_warnings += list(reply.get("warnings") or ())

    def from_wire(self, frame, params, names, node):
        """A node's records, as its bcc wrote them, decoded here."""
        records = np.frombuffer(frame.columns["records"], dtype=self._layout.event_dtype)
        return one_per_row(PlainDecoder(self._layout, node).decode(records))

    def result(self, df):
        return self.result_with_tables(df, {})

    def result_with_tables(self, df, tables: dict):
        from gadgetbook.programs.result import ProgramResult

        return ProgramResult.of_run(df, tables)

    def live_view(self) -> type | None:
        """The live view of a running program; a replayed one (no spec) shows itself, as a Profile does."""
        if self.spec is None:
            return None
        from gadgetbook.views.program import ProgramLive

        return ProgramLive

    def check(self, params: dict[str, Any]) -> None:
        pass


def _cgroups_of(containers, mntns_ids) -> set[int]:
    """The cgroup ids of the containers with these mount namespaces (their processes' cgroups)."""
    from gadgetbook.programs.bcc_host import cgroup_ids

    wanted = set(mntns_ids)
    return cgroup_ids([p for c in containers.refresh() if c.mntns_ids & wanted for p in c.pids])


def _pages(ring_bytes: int | None) -> int:
    """Pages of each CPU's perf buffer: --ring-size split in pages (a power of two), 128 by default (512 KiB)."""
    if not ring_bytes:
        return 128
    pages = max(1, ring_bytes // os.sysconf("SC_PAGE_SIZE"))
    return 1 << (pages.bit_length() - 1)


class BccSource(TableSource):
    """The child process running the program: its frames read on a thread, its stderr kept for errors."""

    def __init__(self, python: str, config: dict, cell: str, node: str, histograms: set[str], containers=None,
                 raw: bool = False) -> None:
        from gadgetbook.programs.bcc_host import CHILD

        self.name = node
        self.cell = cell
        self.histograms = histograms
        self.containers = containers
        self.raw = raw  # a node: records go to the client as bcc wrote them
        self.record: dict | None = None
        self.decoder = None
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._readings = TableReadings()
        self._counts = {"lost": 0, "dropped": 0}
        self._error: dict | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._stderr: list[bytes] = []
        # -I: the child's own directory (this package's) stays off sys.path, so `import bcc` is bcc's.
        self._proc = subprocess.Popen([python, "-I", str(CHILD)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, start_new_session=True)
        self._threads = [threading.Thread(target=self._read_frames, daemon=True, name=f"gadgetbook-bcc-{node}"),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        try:
            for t in self._threads:
                t.start()
            self._proc.stdin.write(json.dumps(config).encode() + b"\n")
            self._proc.stdin.flush()
            deadline = time.monotonic() + READY_TIMEOUT
            while not self._ready.wait(0.1):
                if self._error is not None or self._done.is_set() or time.monotonic() > deadline:
                    break
            if not self._ready.is_set():
                if self._error is not None:
                    self._proc.wait(timeout=10)  # it exits after saying why: its stderr is complete then
                raise self._failure()
        except BaseException:
            self.close()
            raise

    # -- the child's output --

    def _read_frames(self) -> None:
        out = self._proc.stdout
        try:
            while True:
                head = out.read(5)
                if len(head) < 5:
                    break
                kind, size = head[:1], struct.unpack("<I", head[1:])[0]
                payload = out.read(size)
                if kind == b"E":
                    with self._lock:
                        self._pending.append(payload)
                elif kind == b"T":
                    reading = json.loads(payload)
                    self._readings.add(reading["name"], self._table(reading))
                elif kind == b"L":
                    self._counts = json.loads(payload)
                elif kind == b"R":
                    self.record = json.loads(payload)["record"]
                    self._ready.set()
                elif kind == b"X":
                    self._error = json.loads(payload)
                elif kind == b"D":
                    break
        except (OSError, ValueError) as exc:
            self._error = self._error or {"stage": "run", "message": f"the bcc process's output broke off ({exc})"}
        finally:
            self._done.set()

    def _read_stderr(self) -> None:
        for chunk in iter(lambda: self._proc.stderr.read1(65536), b""):
            self._stderr.append(chunk)
            while sum(map(len, self._stderr)) > 1 << 20:
                self._stderr.pop(0)

    def _failure(self) -> GadgetError:
        from gadgetbook.programs.bcc_host import cell_diagnostics
        from gadgetbook.programs.compile import CompileError

        for t in self._threads[1:]:
            t.join(timeout=5)
        stderr = b"".join(self._stderr).decode(errors="replace")
        error = self._error or {"stage": "run", "message": "the bcc process ended before the program ran"}
        if error["stage"] == "compile":
            return CompileError(self.cell, stderr, found=cell_diagnostics(stderr, self.cell))
        if error["stage"] == "load":
            log = [line for line in stderr.splitlines() if line.strip()][-12:]
            detail = ("\nbcc says:\n" + "\n".join(f"  {line}" for line in log)) if log else ""
            return GadgetError(f"The kernel refused the program: {error['message']}.{detail}")
        return GadgetError(error["message"])

    def _table(self, reading: dict) -> Batch:
        from gadgetbook.programs.maps import HIST_NAME, histogram_columns

        columns: dict = {}
        for name, code, values in zip(reading["columns"], reading["codes"],
                                      zip(*reading["rows"]) if reading["rows"] else [()] * len(reading["columns"])):
            columns[name] = _column(code, list(values))
        n = len(reading["rows"])
        keyed = len(columns) == 2 and all(isinstance(v, np.ndarray) and v.dtype.kind in "iu" for v in columns.values())
        if keyed and (reading["name"] in self.histograms or HIST_NAME.search(reading["name"])):
            slot, count = columns.values()
            order = np.argsort(slot, kind="stable")
            columns = histogram_columns(slot[order], count[order], "bcc")
            n = len(columns["slot"])
        head: dict = {"node": Coded(np.zeros(n, np.int32), np.array([self.name], dtype=object))}
        if "timestamp" in reading:
            head["timestamp"] = np.full(n, np.datetime64(reading["timestamp"], "ns"))
        return head | columns

    # -- Source --

    def poll(self):
        with self._lock:
            chunks, self._pending = self._pending, []
        if not chunks:
            if self._done.is_set() and self._error:
                raise self._failure()
            return None
        if self.decoder is None:
            return None
        data = b"".join(chunks)
        if self.raw:
            from gadgetbook.protocol import Frame

            return Frame({}, {"records": np.frombuffer(data, np.uint8)})
        events = np.frombuffer(data, dtype=self.decoder.spec.event_dtype)
        return one_per_row(self.decoder.decode(events))

    def add_mntns(self, mntns_ids) -> None:
        """Containers that started during the run join the filter (their cgroups)."""
        cgroups = _cgroups_of(self.containers, mntns_ids) if self.containers is not None else set()
        if cgroups and self._proc.poll() is None:
            try:
                self._proc.stdin.write(f"cgroups {json.dumps(sorted(cgroups))}\n".encode())
                self._proc.stdin.flush()
            except OSError:
                pass  # it has ended: finish() says why

    def finish(self) -> None:
        if self._proc.poll() is None and not self._done.is_set():
            try:
                self._proc.stdin.write(b"stop\n")
                self._proc.stdin.flush()
            except OSError:
                pass
            self._done.wait(30)

    def lost(self) -> int:
        return int(self._counts.get("lost", 0)) + int(self._counts.get("dropped", 0))

    def attrs(self) -> dict[str, Any]:
        dropped = int(self._counts.get("dropped", 0))
        return {"dropped": dropped} if dropped else {}

    def close(self) -> None:
        proc = self._proc
        try:
            proc.stdin.close()  # end of file: the child stops, and bcc detaches its probes
        except OSError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for t in self._threads:
            t.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            stream.close()


def _column(code: str, values: list):
    if code == "str":
        index: dict = {}
        codes = np.array([index.setdefault("" if v is None else v, len(index)) for v in values], dtype=np.int32)
        categories = np.empty(len(index), dtype=object)
        categories[:] = list(index)
        return Coded(codes, categories)
    if code == "list":
        out = np.empty(len(values), dtype=object)
        out[:] = [np.asarray(v) for v in values]
        return out
    if code.startswith("V"):
        return np.array(values, dtype=object)
    return np.array([0 if v is None else v for v in values], dtype=code)
