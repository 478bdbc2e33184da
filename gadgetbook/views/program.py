"""The live view of a program of one's own: the newest events, and its maps' newest readings (--interval)
under them; when it ends, static HTML (tables and histogram charts) that a saved notebook keeps."""

from __future__ import annotations

import html
import time

from gadgetbook.run_handle import rows
from gadgetbook.views.live import LiveTable, _cell
from gadgetbook.views.table import text_columns

MAP_ROWS = 10


class ProgramLive(LiveTable):
    def __init__(self, run, max_rows: int = 20, refresh: float = 0.25) -> None:
        import ipywidgets as w

        super().__init__(run, max_rows=max_rows, refresh=refresh)
        self.maps = w.HTML()
        self.box.children = (*self.box.children, self.maps)
        self._maps_at = 0.0

    def render(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._maps_at >= max(self.refresh, 1.0):
            self._maps_at = now
            tables = self.run.live_tables()
            self.maps.value = "".join(_map_html(name, batch) for name, batch in sorted(tables.items()))
        super().render(force)

    def finish(self, result, show_table: bool) -> None:
        """The final view: the whole result (tables, charts), or its summary when the notebook shows it anyway."""
        from IPython.display import HTML

        final = result._repr_html_() if show_table else (
            f'<div class="gadgetbook-final">{result.summary_html()}</div>')
        self.stop_button.running = False
        if self._handle is not None:
            self._handle.update(HTML(final))
        self.box.close()


def _map_html(name: str, batch) -> str:
    columns = [c for c in batch if c not in ("node", "timestamp")]
    n = rows(batch)
    cols = text_columns(batch, columns)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c, cols[c][i])}</td>" for c in columns) + "</tr>"
                   for i in range(min(n, MAP_ROWS)))
    more = f"<div>... {n - MAP_ROWS:,} more rows</div>" if n > MAP_ROWS else ""
    return (f'<div class="gadgetbook-map"><b>map {html.escape(name)}</b> ({n:,} rows)'
            f'<table class="gadgetbook-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}</div>')
