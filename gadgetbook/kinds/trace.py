"""The trace kind: one row per event, drained from the gadget's ring buffer by a thread of its own.

A trace gadget may count repeats in the kernel: its `--unique` param sets `gadget_count_repeats`, and its
object keeps `gadget_repeats`, a hash map from a key to the first event seen with it, whose `count` field
grows with each repeat and whose `_reported` field says how many of them went through the ring buffer.
When the run ends the programs are detached and the map's remaining counts become rows of their own; the
result then folds rows alike in everything but their count into one, so `count` is exact.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from gadgetbook.errors import GadgetError
from gadgetbook.frames.decode import COMMON_COLUMNS, Decoder, NoContainers, column_docs
from gadgetbook.kernel.gadget import DEFAULT_RING_BYTES, EVENTS_MAP, load_gadget
from gadgetbook.kernel.maps import MapReader
from gadgetbook.kinds.base import Kind
from gadgetbook.kinds.threaded_source import ThreadedSource

UNIQUE_PARAM, REPEATS_RODATA, REPEATS_MAP, COUNT_COLUMN = "unique", "gadget_count_repeats", "gadget_repeats", "count"


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

    def open(self, params: dict[str, Any], *, mntns_ids, pid, ring_bytes, containers, node) -> TraceSource:
        self.check(params)
        repeats = bool(params.get(UNIQUE_PARAM))
        # The repeats map is preallocated: without --unique it shrinks to one entry.
        sizes = {REPEATS_MAP: 1} if UNIQUE_PARAM in self.spec.params and not repeats else None
        obj = load_gadget(str(self.spec.object_path), self.spec.hooks, self.spec.rodata(params),
                          mntns_ids=mntns_ids, pid=pid, ring_bytes=ring_bytes or DEFAULT_RING_BYTES,
                          max_entries=sizes)
        try:
            return TraceSource(obj, ring_bytes or DEFAULT_RING_BYTES, Decoder(self.spec, node, containers), node,
                               repeats=repeats)
        except BaseException:
            obj.close()
            raise

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
    """Drains the ring buffer every few milliseconds on a thread of its own, so decoding a
    large batch never keeps the ring from being emptied (that is when events get lost)."""

    max_backlog = 2_000_000  # events read and not yet decoded by the run

    def _size(self, item: np.ndarray) -> int:
        return len(item)

    def __init__(self, obj, ring_bytes: int, decoder: Decoder, name: str, interval: float = 0.002,
                 repeats: bool = False) -> None:
        from gadgetbook.kernel.ring import RingReader  # numpy's import waits until the programs are attached

        super().__init__(obj, name)
        self.decoder = decoder
        self.ring_bytes = ring_bytes
        self.repeats = repeats
        self._interval = interval
        self._ring = RingReader(obj.map_fd(EVENTS_MAP), ring_bytes, decoder.spec.event_dtype)
        self._busy = False
        self._finished = False
        self._start()

    def finish(self) -> None:
        """Detach, then take what the kernel holds: the ring buffer's last events, and with --unique the
        counts of repeats, complete now that no program can add to them."""
        if self._finished:
            return
        self._finished = True
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.obj.detach()
        self._take()
        if self.repeats:
            counted = self._read_repeats()
            if len(counted):
                with self._lock:
                    self._items.append(counted)

    def _read_repeats(self) -> np.ndarray:
        """The repeats the ring buffer did not carry, as events whose count says how many."""
        size = self.obj.map_key_size(REPEATS_MAP)
        reader = MapReader(self.obj.map_fd(REPEATS_MAP), self.obj.map_max_entries(REPEATS_MAP),
                           np.dtype((np.void, size)), self.decoder.spec.event_dtype, name=f"{self.name} repeats")
        _, events = reader.read()
        left = events[COUNT_COLUMN] - events["_reported"]
        events = events[left > 0]
        events[COUNT_COLUMN] = left[left > 0]
        return events

    def _read(self):
        events = self._ring.read()
        # Read again at once when the ring was busy; otherwise wait a little.
        self._busy = len(events) * self._ring.stride >= self.ring_bytes // 8
        return events if len(events) else None

    def _wait(self) -> bool:
        return self._stop.is_set() if self._busy else self._stop.wait(self._interval)

    def _combine(self, items: list[np.ndarray]):
        return self.decoder.decode(items[0] if len(items) == 1 else np.concatenate(items))

    def _release(self) -> None:
        self._ring.close()
