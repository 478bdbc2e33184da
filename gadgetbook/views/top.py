"""The live top table in a notebook: the newest interval's rows in the run's sort order, replaced in place each
interval (same height, same columns); its header counts rows and intervals."""

from __future__ import annotations

import numpy as np

from gadgetbook.run_handle import Run
from gadgetbook.views.live import LiveTable, _sliced
from gadgetbook.views.live import watch as _watch
from gadgetbook.views.table import filled


class TopTable(LiveTable):
    """Like the live table (same header, Stop button and final view), but each interval replaces the rows."""

    def __init__(self, run: Run, max_rows: int = 20, refresh: float = 0.25) -> None:
        super().__init__(run, max_rows=max_rows, refresh=refresh)
        self.intervals = 0
        self.box.add_class("gadgetbook-top")

    def add(self, batch) -> None:
        stamps = batch["timestamp"]
        if not len(stamps):
            return
        # A batch may hold several intervals; the newest is what a top shows. Rows come sorted by the source.
        # An interval's rows share one timestamp and sit together.
        first = int(np.flatnonzero(stamps == stamps[-1])[0])
        newest = _sliced(batch, first)
        n = len(newest["timestamp"])
        if n > self.max_rows:
            newest = {k: v.take(np.arange(self.max_rows)) for k, v in newest.items()}
        self.filled |= filled(newest, [c for c in self.layout.order if c not in self.filled])
        self._rows.clear()
        self._take(newest)
        self.intervals += len(np.unique(stamps))

    def counts(self, now: float) -> str:
        shown = len(self._rows)
        tally = self.run.kind.tally(self.run.counters.events, {"intervals": self.intervals})
        return f"{tally} &middot; {shown:,} in the newest"

    def marks(self) -> dict[str, str]:
        try:
            sort = self.run.kind.settings(self.run.params).sort
        except Exception:  # noqa: BLE001 - a replayed or foreign run: no order to show
            return {}
        return {name: " ▼" if descending else " ▲" for name, descending in sort}


def watch(run: Run, max_rows: int = 20, refresh: float = 0.25) -> TopTable:
    """Show a top run live until it ends, the Stop button is pressed, or the kernel is interrupted."""
    return _watch(run, max_rows=max_rows, refresh=refresh, table=TopTable)
