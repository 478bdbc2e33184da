"""The investigation timeline: an anywidget (canvas renderer in timeline.js) with a lane per pod or container
and every gadget's events as marks on one time axis; hovering names an event, dragging brushes a span.

`InvestigationView` puts it above a table per gadget: a brushed span filters every table, and is readable
from Python as `view.span` and `investigation.span` (None when nothing is brushed; a double click clears it).
"""

from __future__ import annotations

import html
from pathlib import Path

import anywidget
import pandas as pd
import traitlets as t

from gadgetbook.views.table import shown_columns
from gadgetbook.views.timeline_data import TimelineData, layout


class Timeline(anywidget.AnyWidget):
    _esm = Path(__file__).with_name("timeline.js")
    _css = Path(__file__).with_name("timeline.css")

    title = t.Unicode("").tag(sync=True)
    lanes = t.List(t.Unicode()).tag(sync=True)
    gadgets = t.List(t.Unicode()).tag(sync=True)
    colors = t.List(t.Unicode()).tag(sync=True)
    t0_ms = t.Float(0.0, help="Start of the axis, ms since the epoch.").tag(sync=True)
    span_ms = t.Float(1.0, help="Width of the axis in ms.").tag(sync=True)
    mode = t.Unicode("marks", help="marks: one per event; bins: counts per lane, gadget and time bin.").tag(sync=True)
    marks = t.Bytes(b"").tag(sync=True)
    details = t.List(t.Unicode()).tag(sync=True)
    counts = t.Bytes(b"").tag(sync=True)
    bins = t.Int(0).tag(sync=True)
    total = t.Int(0).tag(sync=True)
    brush = t.List(t.Float(), help="[start, end] in ms from the axis start; [] when nothing is brushed.").tag(sync=True)

    def __init__(self, data: TimelineData, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data = data
        self.lanes, self.gadgets, self.colors = data.lanes, data.gadgets, data.colors
        self.t0_ms = data.t0 / 1e6
        self.span_ms = (data.t1 - data.t0) / 1e6
        self.mode, self.total = data.mode, data.total
        if data.mode == "marks":
            self.marks = data.marks.tobytes()
            self.details = data.details
        else:
            self.counts = data.counts.tobytes()
            self.bins = data.counts.shape[2]

    @property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The brushed span as wall-clock timestamps, or None."""
        if len(self.brush) != 2:
            return None
        lo, hi = sorted(self.brush)
        start = self.data.t0 + int(lo * 1e6)
        return pd.Timestamp(start), pd.Timestamp(self.data.t0 + int(hi * 1e6))

    def select(self, start, end) -> None:
        """Brush a span from Python (wall-clock timestamps)."""
        t0 = pd.Timestamp(self.data.t0)
        self.brush = [(pd.Timestamp(start) - t0).value / 1e6, (pd.Timestamp(end) - t0).value / 1e6]


class InvestigationView:
    """The timeline above one table per gadget; brushing filters the tables and sets `investigation.span`."""

    def __init__(self, investigation, max_rows: int = 8) -> None:
        import ipywidgets as w

        self.investigation = investigation
        self.max_rows = max_rows
        self.timeline = Timeline(layout(investigation.frames), title=investigation.facts.get("targets") or "")
        self.status = w.HTML()
        self.status.add_class("gadgetbook-timeline-status")
        self.tables = {g: w.HTML() for g in investigation.frames}
        for g, table in self.tables.items():
            table.add_class("gadgetbook-timeline-table")
            table.add_class(f"gadgetbook-timeline-table-{g}")
        self.box = w.VBox([self.timeline, self.status, *self.tables.values()])
        self.box.add_class("gadgetbook-investigation")
        self.timeline.observe(lambda _: self._update(), names="brush")
        self._update()

    @property
    def span(self):
        return self.timeline.span

    def _update(self) -> None:
        inv = self.investigation
        inv.span = self.timeline.span
        shown = inv.selected()
        if inv.span:
            a, b = inv.span
            self.status.value = (f"<b>span</b> {a:%H:%M:%S.%f}"[:-3] + f" to {b:%H:%M:%S.%f}"[:-3]
                                 + f" ({(b - a).total_seconds():.3f} s); double-click the timeline to clear")
        else:
            self.status.value = "all events; drag across the timeline to look at a span"
        for g, table in self.tables.items():
            df, full = shown[g], inv.frames[g]
            head = (f'<div class="gadgetbook-table-title" data-rows="{len(df)}"><b>{html.escape(g)}</b>: '
                    f"{len(df):,} of {len(full):,} rows</div>")
            cols = shown_columns(list(df.columns), pods=bool(len(df)) and "pod" in df and (df["pod"] != "").any())
            body = df[cols].head(self.max_rows).to_html(max_cols=24, index=False, border=0,
                                                        classes="gadgetbook-table") if len(df) else ""
            table.value = head + body

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)
