"""The trace kind: one row per event, drained from the gadget's ring buffer by a thread of its own.

A trace gadget may count repeats in the kernel: its `--unique` param sets `gadget_count_repeats`, and its
object keeps `gadget_repeats`, a hash map from a key to the first event seen with it, whose `count` field
grows with each repeat and whose `_reported` field says how many of them went through the ring buffer.
When the run ends the programs are detached and the map's remaining counts become rows of their own; the
result then folds rows alike in everything but their count into one, so `count` is exact.
"""

from __future__ import annotations

import os
import select
import time
from typing import Any

import numpy as np

from gadgetbook.errors import GadgetError
from gadgetbook.frames.decode import COMMON_COLUMNS, Decoder, NoContainers, column_docs
from gadgetbook.kernel.gadget import DEFAULT_RING_BYTES, EVENTS_MAP, load_gadget
from gadgetbook.kernel.maps import MapReader
from gadgetbook.kinds.base import DecodedKind
from gadgetbook.kinds.threaded_source import ThreadedSource

UNIQUE_PARAM, REPEATS_RODATA, REPEATS_MAP, COUNT_COLUMN = "unique", "gadget_count_repeats", "gadget_repeats", "count"


class TraceKind(DecodedKind):
    name = "trace"

    def decoder(self) -> Decoder:
        return Decoder(self.spec, "", NoContainers())

    def own_columns(self) -> tuple:
        return tuple(c for c in self.spec.event_columns if not c.hidden) if self.spec is not None else ()

    def describe_columns(self) -> list[str]:
        lines = [f"  {', '.join(COMMON_COLUMNS)} (common to all trace gadgets), then:"]
        return lines + [f"  {name:<22} {doc}" for name, doc in column_docs(c for c in self.spec.event_columns
                                                                          if not c.hidden)]

    def check(self, params: dict[str, Any]) -> None:
        unique = self.spec.params.get(UNIQUE_PARAM)
        if unique is not None and unique.rodata != REPEATS_RODATA:
            raise GadgetError(f"{self.spec.name}'s --unique must set {REPEATS_RODATA}; its metadata is malformed.")

    def open(self, params: dict[str, Any], *, mntns_ids, pid, ring_bytes, containers, node,
             raw: bool = False) -> TraceSource:
        self.check(params)
        repeats = bool(params.get(UNIQUE_PARAM))
        ring = ring_bytes or DEFAULT_RING_BYTES
        # The repeats map is preallocated: without --unique it shrinks to one entry.
        sizes = {REPEATS_MAP: 1} if UNIQUE_PARAM in self.spec.params and not repeats else None
        obj = load_gadget(str(self.spec.object_path), self.spec.hooks, self.spec.rodata(params),
                          mntns_ids=mntns_ids, pid=pid, ring_bytes=ring, max_entries=sizes)
        try:
            if raw:
                # A node holds at most two rings' worth of records it has not sent: memory stays flat, and a
                # sender late by a few tens of milliseconds costs no events.
                return TraceSource(obj, ring, None, node, event=self.spec.event_dtype, repeats=repeats,
                                   max_backlog=2 * ring // self.spec.event_dtype.itemsize)
            return TraceSource(obj, ring, Decoder(self.spec, node, containers), node, repeats=repeats)
        except BaseException:
            obj.close()
            raise

    def from_wire(self, frame, params, names, node):
        """A node's raw records decoded here, on the node's clock."""
        events = frame.columns["events"]
        return Decoder(self.spec, node, names, offset_ns=int(frame.header["boot_to_wall_ns"])).decode(events)

    def result(self, df):
        """The DataFrame; a run that counted repeats has one row per key, with the exact count."""
        if (df.attrs.get("params") or {}).get(UNIQUE_PARAM) and COUNT_COLUMN in df.columns:
            return fold_repeats(df)
        return df


def fold_repeats(df):
    """Rows alike in node, container and every column of the gadget's own but the count, as one row:
    the first seen, with the counts summed."""
    keys = ["node", "mntns_id", *(c for c in df.columns if c not in COMMON_COLUMNS and c not in
                                  ("mntns_id", COUNT_COLUMN))]
    ordered = df.sort_values("timestamp", kind="stable")
    totals = ordered.groupby(keys, observed=True, sort=False, dropna=False)[COUNT_COLUMN].transform("sum")
    first = ~ordered.duplicated(keys)
    out = ordered[first].copy()
    out[COUNT_COLUMN] = totals[first].astype(df[COUNT_COLUMN].dtype)
    out = out.reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out


class TraceSource(ThreadedSource):
    """Drains the ring buffer on a thread of its own, so decoding a large batch never keeps the ring from
    being emptied (that is when events get lost). It reads every `interval` seconds, and at once when the
    kernel wakes it: the gadgets wake the reader only when a sixteenth of the ring is waiting (see
    gadget_submit in gadget.h), so a steady trickle costs no wakeup and a burst is read before it fills."""

    max_backlog = 2_000_000  # events read and not yet decoded by the run

    def _size(self, item: np.ndarray) -> int:
        return len(item)

    def __init__(self, obj, ring_bytes: int, decoder: Decoder | None, name: str, interval: float = 0.02,
                 repeats: bool = False, event: np.dtype | None = None, max_backlog: int | None = None) -> None:
        from gadgetbook.kernel.ring import RingReader  # numpy's import waits until the programs are attached

        super().__init__(obj, name)
        if max_backlog is not None:
            self.max_backlog = max_backlog
        self.decoder = decoder  # None: hand over the raw records (a node ships them; the client decodes)
        self.event = event if decoder is None else decoder.spec.event_dtype
        self.ring_bytes = ring_bytes
        self.repeats = repeats
        self._interval = interval
        self._ring = RingReader(obj.map_fd(EVENTS_MAP), ring_bytes, self.event)
        # Edge-triggered: epoll reports the kernel's wakeups only, not every record that is waiting.
        self._epoll = select.epoll()
        self._epoll.register(obj.map_fd(EVENTS_MAP), select.EPOLLIN | select.EPOLLET)
        self._stop_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._stop_fd, select.EPOLLIN)
        self._busy = False
        self._finished = False
        self._start()

    def finish(self) -> None:
        """Detach, then take what the kernel holds: the ring buffer's last events, and with --unique the
        counts of repeats, complete now that no program can add to them."""
        if self._finished:
            return
        self._finished = True
        super().finish()
        if self.repeats:
            counted = self._read_repeats()
            if len(counted):
                with self._lock:
                    self._items.append(counted)

    def _read_repeats(self) -> np.ndarray:
        """The repeats the ring buffer did not carry, as events whose count says how many."""
        size = self.obj.map_key_size(REPEATS_MAP)
        reader = MapReader(self.obj.map_fd(REPEATS_MAP), self.obj.map_max_entries(REPEATS_MAP),
                           np.dtype((np.void, size)), self.event, name=f"{self.name} repeats")
        _, events = reader.read()
        left = events[COUNT_COLUMN] - events["_reported"]
        events = events[left > 0]
        events[COUNT_COLUMN] = left[left > 0]
        return events

    def _read(self):
        events = self._ring.read()
        # Read again at once when the ring was busy; otherwise wait for the timer or a wakeup.
        self._busy = len(events) * self._ring.stride >= self.ring_bytes // 8
        return events if len(events) else None

    def _wait(self) -> bool:
        if not self._busy and not self._stop.is_set():
            self._epoll.poll(self._interval)
        return self._stop.is_set()

    def _wake(self) -> None:
        if self._stop_fd >= 0:
            os.eventfd_write(self._stop_fd, 1)

    def _take_last(self, patience: float = 1.0) -> None:
        # A program that was running when the links went may still be writing its record (the reader
        # stops at a busy one): read until the ring is empty; that takes microseconds, `patience` at most.
        deadline = time.monotonic() + patience
        self._take()
        while self._ring.pending() and time.monotonic() < deadline:
            time.sleep(0.001)
            self._take()

    def _combine(self, items: list[np.ndarray]):
        events = items[0] if len(items) == 1 else np.concatenate(items)
        if self.decoder is None:
            from gadgetbook.frames.decode import boot_to_wall_ns
            from gadgetbook.protocol import Frame

            return Frame({"boot_to_wall_ns": boot_to_wall_ns()}, {"events": events}, mntns=events["mntns_id"])
        return self.decoder.decode(events)

    def _release(self) -> None:
        self._ring.close()
        self._epoll.close()
        os.close(self._stop_fd)
        self._stop_fd = -1
