"""The top kind: the kernel sums into a hash map that is read and cleared every interval; one row per
(interval, key), sorted and cut per interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gadgetbook.errors import GadgetError
from gadgetbook.frames.decode import NoContainers
from gadgetbook.frames.top import TOP_COMMON, TopDecoder, order_rows, wall_now_ns
from gadgetbook.kernel.gadget import load_gadget
from gadgetbook.kernel.maps import MapReader
from gadgetbook.kinds.base import DecodedKind
from gadgetbook.kinds.threaded_source import ThreadedSource
from gadgetbook.run_handle import Batch, concat

TOP_MAP, TOP_LOST_MAP = "gadget_top", "gadget_top_lost"


@dataclass(frozen=True)
class TopSettings:
    """How often to read the map, how to order each interval's rows and how many to keep."""

    interval: float
    sort: tuple[tuple[str, bool], ...]  # (column, descending)
    max_rows: int


class TopKind(DecodedKind):
    name = "top"
    terminal = "intervals"

    def decoder(self) -> TopDecoder:
        return TopDecoder(self.spec, "", NoContainers())

    def own_columns(self) -> tuple:
        return tuple(c for c in self.spec.top_layout.columns if not c.hidden) if self.spec is not None else ()

    def tally(self, rows: int, attrs: dict[str, Any]) -> str:
        """Rows of a top table, not events: one per connection (or key) and interval."""
        intervals = attrs.get("intervals")
        over = f" over {intervals:,} interval{'' if intervals == 1 else 's'}" if intervals else ""
        return f"{rows:,} row{'' if rows == 1 else 's'}{over}"

    def describe_columns(self) -> list[str]:
        lines = [f"  {', '.join(TOP_COMMON)} (common to all top gadgets), then:"]
        return lines + [f"  {c.name:<22} {c.doc}" for c in self.spec.top_layout.columns if not c.hidden]

    def settings(self, params: dict[str, Any]) -> TopSettings:
        """The top kind's own params checked: a GadgetError in one sentence for a bad interval or sort key."""
        interval = float(params.get("interval", 1.0))
        if not interval > 0:
            raise GadgetError(f"--interval must be a positive number of seconds (got {params.get('interval')!r}).")
        max_rows = int(params.get("max_rows", 0) or 0)
        keys = []
        sortable = [c for c in self.columns() if c not in ("node", "mntns_id")]
        for term in str(params.get("sort") or "").split(","):
            term = term.strip()
            if not term:
                continue
            descending = term.startswith("-")
            name = term.lstrip("-+")
            if name not in sortable:
                raise GadgetError(f"{self.spec.name} cannot sort by {name!r}; sort by one of {', '.join(sortable)} "
                                  "(prefix '-' for descending).")
            keys.append((name, descending))
        return TopSettings(interval, tuple(keys), max_rows)

    def check(self, params: dict[str, Any]) -> None:
        self.settings(params)

    def open(self, params: dict[str, Any], *, mntns_ids, pid, ring_bytes, containers, node,
             raw: bool = False) -> TopSource:
        settings = self.settings(params)  # bad settings fail before anything loads
        # The shared header's ring buffer goes unused by top gadgets: it stays at one page.
        obj = load_gadget(str(self.spec.object_path), self.spec.hooks, self.spec.rodata(params),
                          mntns_ids=mntns_ids, pid=pid)
        try:
            layout = self.spec.top_layout
            reader = MapReader(obj.map_fd(TOP_MAP), obj.map_max_entries(TOP_MAP), layout.key, layout.value,
                               delete=True, name=f"{self.spec.name}'s")
            decoder = None if raw else TopDecoder(self.spec, node, containers)
            return TopSource(obj, reader, decoder, settings, node)
        except BaseException:
            obj.close()
            raise

    def from_wire(self, frame, params, names, node) -> Batch:
        """Each interval's map reading decoded, sorted and cut here: the node ships the keys as read."""
        settings = self.settings(params)
        decoder = TopDecoder(self.spec, node, names)
        keys, values, wall = frame.columns["keys"], frame.columns["values"], frame.columns["wall_ns"]
        parts = [order_rows(decoder.decode(keys[wall == t], values[wall == t], int(t)), settings.sort,
                            settings.max_rows) for t in np.unique(wall).tolist()]
        return concat(parts, decoder.names()) if parts else decoder.empty()

    def live_view(self) -> type:
        from gadgetbook.views.top import TopTable

        return TopTable


class TopSource(ThreadedSource):
    """One batch per interval: each key's counts since the previous reading, sorted and cut (or, for
    a node, the keys and values as read, with the time of the reading)."""

    def __init__(self, obj, reader: MapReader, decoder: TopDecoder | None, settings: TopSettings, name: str) -> None:
        super().__init__(obj, name)
        if decoder is None:
            self.max_backlog = 64  # a node's readings not yet sent (one map each)
        self.reader = reader
        self.decoder = decoder
        self.settings = settings
        self.intervals = 0
        self._start()

    def _read(self):
        keys, values = self.reader.read()
        self.intervals += 1
        if not len(keys):
            return None
        if self.decoder is None:
            return {"keys": keys, "values": values, "wall_ns": np.full(len(keys), wall_now_ns(), dtype=np.int64)}
        batch = self.decoder.decode(keys, values, wall_now_ns())
        return order_rows(batch, self.settings.sort, self.settings.max_rows)

    def _wait(self) -> bool:
        return self._stop.wait(self.settings.interval)

    def _combine(self, items: list[Batch]):
        if self.decoder is None:
            from gadgetbook.protocol import Frame

            columns = {k: np.concatenate([i[k] for i in items]) for k in items[0]}
            # The mount namespace is a field of the key or of the value, as the gadget declares.
            mntns = next((columns[part]["mntns_id"] for part in ("keys", "values")
                          if "mntns_id" in (columns[part].dtype.names or ())), None)
            return Frame({}, columns, mntns=mntns)
        return concat(items, self.decoder.names())

    def attrs(self) -> dict[str, object]:
        """Facts for the result's attrs: how many intervals were read."""
        return {"intervals": self.intervals}

    def lost(self) -> int:
        """Keys that found the map full, all CPUs together."""
        return self.obj.percpu_total(TOP_LOST_MAP)
