"""The program kind: a CO-RE program of one's own (%%bpf), loaded like any gadget. Its ring buffer's records
become rows (columns from the record struct's BTF), and its maps become tables, read when it ends (and at
every --interval while it runs)."""

from __future__ import annotations

import base64
import functools
import time
from typing import Any

import numpy as np

from gadgetbook.errors import GadgetError
from gadgetbook.frames.coded import Coded
from gadgetbook.frames.decode import Decoder, NoContainers
from gadgetbook.frames.formats import format_column
from gadgetbook.kernel.gadget import DEFAULT_RING_BYTES, LOST_MAP, load_gadget, lost_events
from gadgetbook.kernel.loader import LoadError
from gadgetbook.kinds.base import Kind
from gadgetbook.kinds.threaded_source import ThreadedSource
from gadgetbook.run_tables import TableReadings, TableSource


class PlainDecoder:
    """Records that do not start with gadget.h's `struct gadget_process`: the node, then the struct's fields."""

    def __init__(self, spec, node: str) -> None:
        self.spec = spec
        self.node = node
        self.columns = [c for c in spec.event_columns if not c.hidden]
        self.categorical = frozenset()

    def names(self) -> list[str]:
        return ["node", *(c.name for c in self.columns)]

    def empty(self) -> dict:
        return self.decode(np.empty(0, dtype=self.spec.event_dtype))

    def decode(self, events: np.ndarray) -> dict:
        out: dict = {"node": Coded(np.zeros(len(events), np.int32), np.array([self.node], dtype=object))}
        for col in self.columns:
            out[col.name] = format_column(events, col)
        return out


def one_per_row(batch: dict) -> dict:
    """Array fields (a `__u64 stack[8]`) as one array per row: a DataFrame column holds one value per row."""
    for name, values in batch.items():
        if isinstance(values, np.ndarray) and values.ndim > 1:
            rows = np.empty(len(values), dtype=object)
            rows[:] = list(values)
            batch[name] = rows
    return batch


def program_empty_notes(columns: list[str], attrs: dict[str, Any]) -> list[str]:
    """Why a program of one's own may have written no record (none to say for one that keeps only maps)."""
    if not columns:
        return []
    targets = attrs.get("targets") or "this host"
    return ["Its ring buffer stayed empty: check the program's hook (SEC), the conditions before it writes, and "
            f"that what it watches happened on {targets} while it ran (a longer --timeout helps)."]


class ProgramKind(Kind):
    name = "program"

    @functools.cached_property
    def _decoder(self):
        return self.decoder("", NoContainers())

    def decoder(self, node: str, containers):
        """How this program's records become columns: the common columns first when the record starts with
        gadget.h's `struct gadget_process`."""
        if self.spec.record is None:
            return None
        if self.spec.layout[2]:
            return Decoder(self.spec, node, containers)
        return PlainDecoder(self.spec, node)

    def columns(self) -> list[str]:
        return self._decoder.names() if self._decoder else []

    def empty(self):
        return one_per_row(self._decoder.empty()) if self._decoder else {}

    @property
    def categorical(self) -> frozenset[str]:
        return self._decoder.categorical if self._decoder else frozenset()

    def describe_columns(self) -> list[str]:
        return [f"  {c}" for c in self.columns()]

    def empty_notes(self, attrs: dict[str, Any]) -> list[str]:
        return program_empty_notes(self.columns(), attrs)

    def check(self, params: dict[str, Any]) -> None:
        unknown = self.spec.hist_names(params) - set(self.spec.maps)
        if unknown:
            raise GadgetError(f"--hist names no map of the program: {', '.join(sorted(unknown))}; "
                              f"its maps: {', '.join(self.spec.maps) or 'none'}.")

    def open(self, params: dict[str, Any], *, mntns_ids, pid, ring_bytes, containers, node,
             raw: bool = False) -> ProgramSource:
        self.check(params)
        ring_bytes = ring_bytes or DEFAULT_RING_BYTES
        try:
            obj = load_gadget(str(self.spec.object_path), (), {}, mntns_ids=mntns_ids, pid=pid,
                              ring_bytes=ring_bytes if self.spec.ring else None,
                              events_map=self.spec.ring or "")
        except LoadError as exc:
            from gadgetbook.programs.verifier import explain

            raise GadgetError(explain(exc, f"the program {self.spec.name}")) from None
        try:
            return ProgramSource(obj, self, params, self.decoder(node, containers), node, ring_bytes, raw=raw)
        except BaseException:
            obj.close()
            raise

    def from_wire(self, frame, params, names, node):
        """A node's raw records decoded here, on the node's clock (its maps come as tables of their own)."""
        decoder = self.decoder(node, names)
        if isinstance(decoder, Decoder):
            decoder.offset_ns = int(frame.header["boot_to_wall_ns"])
        return one_per_row(decoder.decode(frame.columns["events"]))

    def result(self, df):
        return self.result_with_tables(df, {})

    def result_with_tables(self, df, tables: dict):
        from gadgetbook.programs.result import ProgramResult

        return ProgramResult.of_run(df, tables)

    def histograms(self, params: dict[str, Any]) -> set[str]:
        return set(self.spec.hist_names(params)) if self.spec is not None else set()

    def live_view(self) -> type | None:
        """The live view of a running program; a replayed one (no spec) shows itself, as a Profile does."""
        if self.spec is None:
            return None
        from gadgetbook.views.program import ProgramLive

        return ProgramLive

    def wire(self, node: str) -> dict[str, Any]:
        """What a node needs beside the START message's params to run this program: the object compiled
        for that node's kernel, and the record's name."""
        path = self.spec.objects.object_for(node) if self.spec.objects is not None else self.spec.object_path
        return {"program": {"kind": self.name, "name": self.spec.name, "record": self.spec.record,
                            "object": base64.b64encode(path.read_bytes()).decode()}}


class ProgramSource(TableSource, ThreadedSource):
    """Drains the program's ring buffer (when it has one) on its own thread, reads its maps at every
    interval and once more at the end, and keeps at most max_events rows (the rest counted as lost)."""

    def __init__(self, obj, kind: ProgramKind, params: dict[str, Any], decoder, node: str, ring_bytes: int,
                 interval: float = 0.002, raw: bool = False) -> None:
        from gadgetbook.kernel.ring import RingReader
        from gadgetbook.programs.maps import MapTables

        super().__init__(obj, node)
        spec = kind.spec
        self.decoder = decoder
        self.raw = raw  # a node: records go to the client as the kernel wrote them
        self.ring_bytes = ring_bytes
        self._ring = RingReader(obj.map_fd(spec.ring), ring_bytes, spec.event_dtype) if decoder else None
        self._maps = MapTables(obj, node, kind.histograms(params))
        self._readings = TableReadings()
        self._every = float(params.get("interval") or 0)
        self._next_reading = time.monotonic() + self._every if self._every else None
        self._max_events = int(params.get("max_events") or 0)
        self._kept = 0
        self._dropped = 0
        self._has_lost_map = LOST_MAP in obj.map_handles()
        self._interval = interval
        self._busy = False
        self._ended = False
        self._start()

    def _read(self):
        if self._next_reading is not None and time.monotonic() >= self._next_reading:
            self._readings.add_all(self._maps.read(stamped=True))
            self._next_reading += self._every
        if self._ring is None:
            return None
        events = self._ring.read()
        self._busy = len(events) * self._ring.stride >= self.ring_bytes // 8
        room = max(self._max_events - self._kept, 0) if self._max_events else len(events)
        if len(events) > room:  # runaway output: read and counted, not kept
            self._dropped += len(events) - room
            events = events[:room]
        self._kept += len(events)
        return events if len(events) else None

    def _wait(self) -> bool:
        if self._busy:
            return self._stop.is_set()
        return self._stop.wait(self._interval if self._ring is not None else 0.05)

    def _combine(self, items: list[np.ndarray]):
        events = items[0] if len(items) == 1 else np.concatenate(items)
        if self.raw:
            from gadgetbook.frames.decode import boot_to_wall_ns
            from gadgetbook.protocol import Frame

            mntns = events["mntns_id"] if "mntns_id" in (events.dtype.names or ()) else None
            return Frame({"boot_to_wall_ns": boot_to_wall_ns()}, {"events": events}, mntns=mntns)
        return one_per_row(self.decoder.decode(events))

    def finish(self) -> None:
        super().finish()
        if not self._ended:
            self._ended = True
            self._readings.add_all(self._maps.read(stamped=self._every > 0))

    def lost(self) -> int:
        return (lost_events(self.obj) if self._has_lost_map else 0) + self._dropped

    def attrs(self) -> dict[str, Any]:
        return {"dropped": self._dropped} if self._dropped else {}

    def _release(self) -> None:
        if self._ring is not None:
            self._ring.close()
