"""What a program of one's own returns: its events as a DataFrame, its maps as DataFrames (log2 histograms
with their bar charts), and one summary line; shown inline as static HTML that survives a saved notebook."""

from __future__ import annotations

import base64
import html
from typing import Any

import pandas as pd

from gadgetbook.frames.dataframe import to_dataframe
from gadgetbook.views.histogram import histogram_png, is_histogram

MAP_ROWS = 20


class ProgramResult:
    """`.events` (one row per ring-buffer record), `.maps` (name -> DataFrame), `result["map"]` for one map,
    `.histograms` (names of the maps that are log2 histograms), `.attrs` (the run's facts)."""

    def __init__(self, events: pd.DataFrame, maps: dict[str, pd.DataFrame]) -> None:
        self.events = events
        self.maps = maps

    @classmethod
    def of_run(cls, events: pd.DataFrame, tables: dict[str, dict]) -> ProgramResult:
        maps = {}
        for name in sorted(tables):
            batch = tables[name]
            maps[name] = to_dataframe([batch], list(batch), {"map": name})
        return cls(events, maps)

    @property
    def attrs(self) -> dict[str, Any]:
        return self.events.attrs

    @property
    def histograms(self) -> list[str]:
        return [name for name, df in self.maps.items() if is_histogram(df)]

    def __getitem__(self, name: str) -> pd.DataFrame:
        try:
            return self.maps[name]
        except KeyError:
            raise KeyError(f"the program has no map {name!r}; its maps: {', '.join(self.maps) or 'none'}") from None

    def __len__(self) -> int:
        return len(self.events)

    def histogram_png(self, name: str) -> bytes:
        """The bar chart of one histogram map (its newest reading), as PNG bytes."""
        return histogram_png(self[name], title=name)

    def summary(self) -> str:
        a = self.attrs
        start, end = a.get("start"), a.get("end")
        seconds = f"{end - start:.1f} s" if start and end else "?"
        targets = f", {a['targets']}" if a.get("targets") else ""
        name = a.get("gadget", "program")
        lost = a.get("lost") or {}
        lost_total = sum(lost.values()) if isinstance(lost, dict) else int(lost or 0)
        if len(self.events.columns) == 0:
            head = f"{name}: ran {seconds}{targets}"
        elif not len(self.events):
            head = f"{name}: 0 events in {seconds}{targets}, {lost_total:,} lost"
        else:
            head = f"{name}: {a.get('events', len(self.events)):,} events, {lost_total:,} lost, {seconds}{targets}"
        if self.maps:
            parts = [f"{n} ({'histogram' if n in self.histograms else f'{len(df):,} rows'})"
                     for n, df in self.maps.items()]
            head += "; maps: " + ", ".join(parts)
        errors = a.get("errors") or {}
        if errors:
            head += "; failed on " + ", ".join(f"{k} ({v})" for k, v in errors.items())
        return head

    def summary_html(self) -> str:
        from gadgetbook.views.summary import notes

        items = "".join(f"<li>{html.escape(n)}</li>" for n in notes(self.attrs))
        return (f'<div class="gadgetbook-summary"><b>{html.escape(self.summary())}</b></div>'
                + (f'<ul class="gadgetbook-notes">{items}</ul>' if items else ""))

    def _repr_html_(self) -> str:
        from gadgetbook.views.result import table_html
        from gadgetbook.views.table import STYLE

        parts = [STYLE, self.summary_html()]
        if len(self.events):
            parts.append(_section("events", table_html(self.events)))
        for name, df in self.maps.items():
            parts.append(_section(f"map {name}", map_table_html(df)))
            if name in self.histograms and len(df):
                png = base64.b64encode(self.histogram_png(name)).decode()
                parts.append(f'<img alt="histogram {html.escape(name)}" src="data:image/png;base64,{png}"/>')
        return f'<div class="gadgetbook-final gadgetbook-program">{"".join(parts)}</div>'

    def __repr__(self) -> str:
        out = [self.summary()]
        if len(self.events.columns):
            out.append(repr(self.events))
        for name, df in self.maps.items():
            out.append(f"map {name}:\n{df!r}")
        return "\n".join(out)


def _section(title: str, body: str) -> str:
    return f"<details open><summary>{html.escape(title)}</summary>{body}</details>"


def map_table_html(table, rows: int = MAP_ROWS) -> str:
    """A map's rows (a DataFrame, or a batch while it runs) in their own order, keys then values; the node
    only when the rows come from more than one."""
    import numpy as np

    from gadgetbook.views.table import Layout, html_table, values

    n = len(table) if hasattr(table, "iloc") else len(next(iter(table.values()), ()))
    several = "node" in table and len(set(values(table, "node"))) > 1
    columns = [c for c in table if c != "node" or several]
    part = table.iloc[:rows] if hasattr(table, "iloc") else {k: v.take(np.arange(min(n, rows))) for k, v in
                                                               table.items()}
    body = html_table(columns, Layout(columns).cells(part, columns))
    return body + (f"<div>… {n - rows:,} more rows</div>" if n > rows else "")
