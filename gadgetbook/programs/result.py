"""What a program of one's own returns: its events as a DataFrame, its maps as DataFrames (log2 histograms
with their bar charts), and one summary line; shown inline as static HTML that survives a saved notebook."""

from __future__ import annotations

import base64
import html
from typing import Any

import pandas as pd

from gadgetbook.frames.dataframe import to_dataframe
from gadgetbook.views.histogram import histogram_png, is_histogram

PREVIEW_ROWS = 10


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

    def to_html(self, **kwargs: Any) -> str:
        """The events as an HTML table (what a replay's final view shows; a recording keeps the events)."""
        return self.events.to_html(**kwargs)

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
        return f'<div class="gadgetbook-summary"><b>{html.escape(self.summary())}</b></div>'

    def _repr_html_(self) -> str:
        parts = [self.summary_html()]
        if len(self.events.columns):
            parts.append(_table(self.events, "events"))
        for name, df in self.maps.items():
            parts.append(_table(df, f"map {name}", rows=20))
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


def _table(df: pd.DataFrame, title: str, rows: int = PREVIEW_ROWS) -> str:
    body = df.to_html(max_rows=rows, max_cols=20, show_dimensions=True, classes="gadgetbook-table", border=0,
                      index=False)
    return f"<details open><summary>{html.escape(title)}</summary>{body}</details>"
