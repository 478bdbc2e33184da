"""The live view of a program of one's own: the newest events, and its maps' newest readings (--interval)
under them; when it ends, static HTML (tables and histogram charts) that a saved notebook keeps."""

from __future__ import annotations

import html
import time

from gadgetbook.views.live import LiveTable


class ProgramLive(LiveTable):
    def __init__(self, run, max_rows: int = 20, refresh: float = 0.25) -> None:
        import ipywidgets as w

        super().__init__(run, max_rows=max_rows, refresh=refresh)
        self.maps = w.HTML()
        self.box.children = (*self.box.children, self.maps)
        self._maps_at = 0.0

    def render(self, force: bool = False) -> None:
        from gadgetbook.programs.result import map_table_html

        now = time.monotonic()
        if force or now - self._maps_at >= max(self.refresh, 1.0):
            self._maps_at = now
            tables = self.run.live_tables()
            self.maps.value = "".join(
                f'<div class="gadgetbook-map"><b>map {html.escape(name)}</b>{map_table_html(batch, 10)}</div>'
                for name, batch in sorted(tables.items()))
        super().render(force)

    def finish(self, result, show: str = "all") -> None:
        """The final view: the whole result (tables, charts), its summary only, or nothing when IPython displays
        the result right after (the cell's value)."""
        from IPython.display import HTML

        final = {"all": result._repr_html_, "summary": lambda: f'<div class="gadgetbook-final">'
                 f"{result.summary_html()}</div>"}.get(show, lambda: "")()
        self.stop_button.running = False
        if self._handle is not None:
            self._handle.update(HTML(final))
        self.box.close()
