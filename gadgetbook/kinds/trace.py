"""The trace kind: one row per event, drained from the gadget's ring buffer by a thread of its own."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from gadgetbook.frames.decode import COMMON_COLUMNS, Decoder, NoContainers, column_docs
from gadgetbook.kernel.gadget import DEFAULT_RING_BYTES, EVENTS_MAP, load_gadget
from gadgetbook.kinds.base import Kind
from gadgetbook.kinds.threaded_source import ThreadedSource


class TraceKind(Kind):
    name = "trace"

    @functools.cached_property
    def _decoder(self) -> Decoder:
        return Decoder(self.spec, "", NoContainers())

    def columns(self) -> list[str]:
        return self._decoder.names()

    def empty(self):
        return self._decoder.empty()

    @property
    def categorical(self) -> frozenset[str]:
        return self._decoder.categorical

    def describe_columns(self) -> list[str]:
        lines = [f"  {', '.join(COMMON_COLUMNS)} (common to all trace gadgets), then:"]
        return lines + [f"  {name:<22} {doc}" for name, doc in column_docs(c for c in self.spec.event_columns
                                                                          if not c.hidden)]

    def open(self, params: dict[str, Any], *, mntns_ids, pid, ring_bytes, containers, node,
             raw: bool = False) -> TraceSource:
        self.check(params)
        ring = ring_bytes or DEFAULT_RING_BYTES
        obj = load_gadget(str(self.spec.object_path), self.spec.hooks, self.spec.rodata(params),
                          mntns_ids=mntns_ids, pid=pid, ring_bytes=ring)
        try:
            if raw:
                # A node holds at most two rings' worth of records it has not sent: memory stays flat, and a
                # sender late by a few tens of milliseconds costs no events.
                return TraceSource(obj, ring, None, node, event=self.spec.event_dtype,
                                   max_backlog=2 * ring // self.spec.event_dtype.itemsize)
            return TraceSource(obj, ring, Decoder(self.spec, node, containers), node)
        except BaseException:
            obj.close()
            raise

    def from_wire(self, frame, params, names, node):
        events = frame.columns["events"]
        return Decoder(self.spec, node, names, offset_ns=int(frame.header["boot_to_wall_ns"])).decode(events)


class TraceSource(ThreadedSource):
    """Drains the ring buffer every few milliseconds on a thread of its own, so decoding a
    large batch never keeps the ring from being emptied (that is when events get lost)."""

    max_backlog = 2_000_000  # events read and not yet decoded by the run

    def _size(self, item: np.ndarray) -> int:
        return len(item)

    def __init__(self, obj, ring_bytes: int, decoder: Decoder | None, name: str, interval: float = 0.002,
                 event: np.dtype | None = None, max_backlog: int | None = None) -> None:
        from gadgetbook.kernel.ring import RingReader  # numpy's import waits until the programs are attached

        super().__init__(obj, name)
        if max_backlog is not None:
            self.max_backlog = max_backlog
        self.decoder = decoder  # None: hand over the raw records (a node ships them; the client decodes)
        self.ring_bytes = ring_bytes
        self._interval = interval
        dtype = event if decoder is None else decoder.spec.event_dtype
        self._ring = RingReader(obj.map_fd(EVENTS_MAP), ring_bytes, dtype)
        self._busy = False
        self._start()

    def _read(self):
        events = self._ring.read()
        # Read again at once when the ring was busy; otherwise wait a little.
        self._busy = len(events) * self._ring.stride >= self.ring_bytes // 8
        return events if len(events) else None

    def _wait(self) -> bool:
        return self._stop.is_set() if self._busy else self._stop.wait(self._interval)

    def _combine(self, items: list[np.ndarray]):
        events = items[0] if len(items) == 1 else np.concatenate(items)
        if self.decoder is None:
            from gadgetbook.frames.decode import boot_to_wall_ns
            from gadgetbook.protocol import Frame

            return Frame({"boot_to_wall_ns": boot_to_wall_ns()}, {"events": events}, mntns=events["mntns_id"])
        return self.decoder.decode(events)

    def _release(self) -> None:
        self._ring.close()
