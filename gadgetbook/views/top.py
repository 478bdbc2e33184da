"""The live top table in a notebook: the newest interval's rows in the run's sort order, redrawn each interval."""

from __future__ import annotations

import numpy as np

from gadgetbook.run_handle import Run
from gadgetbook.views.live import LiveTable, _cell, _sliced
from gadgetbook.views.live import watch as _watch
from gadgetbook.views.table import text_columns


class TopTable(LiveTable):
    """Like the live table (same counters, Stop button and final view), but each interval replaces the rows."""

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
        cols = text_columns(newest, self.columns)
        self._rows.clear()
        for row in zip(*(cols[c] for c in self.columns)):
            self._rows.append([_cell(c, v) for c, v in zip(self.columns, row)])
        self.intervals += len(np.unique(stamps))
        self._dirty = True


def watch(run: Run, max_rows: int = 20, refresh: float = 0.25) -> TopTable:
    """Show a top run live until it ends, the Stop button is pressed, or the kernel is interrupted."""
    return _watch(run, max_rows=max_rows, refresh=refresh, table=TopTable)
