"""The live view of a run in a notebook: a header (where, how many, how fast), a Stop button and the newest rows
in a table of fixed height, then the final view (views/result.py) in the same columns and cells."""

from __future__ import annotations

import html
import time
from collections import deque

from gadgetbook.run_handle import Run, rows
from gadgetbook.views.summary import where
from gadgetbook.views.table import ROW_PX, STYLE, Cell, Layout, filled, html_table


class LiveTable:
    """An ipywidgets view of a live run. It re-renders at most every `refresh` seconds and never holds more
    than `max_rows` rows in the page, whatever the event rate; its height does not change while it runs."""

    def __init__(self, run: Run, max_rows: int = 20, refresh: float = 0.25) -> None:
        import ipywidgets as w

        self.run = run
        self.max_rows = max_rows
        self.refresh = refresh
        self.layout = Layout.for_kind(run.kind, run.columns)
        self.filled: set[str] = set()  # columns that held a value in some row so far
        self._rows: deque[dict[str, Cell]] = deque(maxlen=max_rows)
        self._rates: deque[tuple[float, int]] = deque(maxlen=64)
        self._dirty = True
        self._last_render = 0.0
        self.renders = 0
        self.counters = w.HTML()
        self.counters.add_class("gadgetbook-counters")
        from gadgetbook.views.stop_button import StopButton, kernel_id

        self.stop_button = StopButton(kernel_id=kernel_id())
        self.stop_button.observe(lambda _: self.request_stop(), names="clicked")
        self.table = w.HTML()
        style = w.HTML(STYLE)  # sent once, not with every update of the table
        self.box = w.VBox([style, w.HBox([self.stop_button, self.counters]), self.table])
        self.box.add_class("gadgetbook-live")
        self.stop_requested = False
        self._handle = None

    def request_stop(self) -> None:
        self.stop_requested = True

    def show(self) -> None:
        from IPython.display import display

        self._handle = display(self.box, display_id=True)
        self.render(force=True)

    def add(self, batch) -> None:
        n = rows(batch)
        self.filled |= filled(batch, [c for c in self.layout.order if c not in self.filled])
        if n > self.max_rows:  # only the newest rows can be shown: convert just those
            batch = _sliced(batch, n - self.max_rows)
        self._take(batch)

    def _take(self, batch) -> None:
        for row in self.layout.cells(batch, self.layout.order):
            self._rows.append(dict(zip(self.layout.order, row)))
        self._dirty = True

    # -- the header --

    def rate(self, now: float) -> float | None:
        """Events per second over the last two seconds or so."""
        events = self.run.counters.events
        self._rates.append((now, events))
        while len(self._rates) > 2 and now - self._rates[1][0] >= 2.0:
            self._rates.popleft()
        t0, e0 = self._rates[0]
        return (events - e0) / (now - t0) if now - t0 >= 0.5 else None

    def counts(self, now: float) -> str:
        c = self.run.counters
        per_s = self.rate(now)
        return (f"{c.events:,} events"
                + (f" &middot; {per_s:,.0f}/s" if per_s is not None else ""))

    def marks(self) -> dict[str, str]:
        """Signs added to column headers (the sort order of a top table)."""
        return {}

    def render(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (not self._dirty or now - self._last_render < self.refresh):
            return
        c = self.run.counters
        self.counters.value = (
            f"<b>{html.escape(self.run.gadget)}</b>{html.escape(where(self._where_attrs()))} &middot; "
            f"{self.counts(now)} &middot; {c.lost_total:,} lost &middot; {c.elapsed:.1f} s"
        )
        shown = self.layout.shown(self.filled) or self.layout.order[:1]
        rows = [[row[col] for col in shown] for row in self._rows]
        height = (self.max_rows + 1) * ROW_PX + 4
        self.table.value = (f'<div class="gadgetbook-rows" style="height: {height}px; overflow: hidden">'
                            f"{html_table(shown, rows, marks=self.marks())}</div>")
        self._dirty = False
        self._last_render = now
        self.renders += 1

    def _where_attrs(self) -> dict[str, str]:
        return {"mode": self.run.mode, "targets": self.run.targets}

    def finish(self, df, show: str = "all") -> None:
        """Replace the widget with the static result view, so the saved notebook reads without a kernel:
        "all" of it (and the interactive table beneath a long result), its "summary" only (the run served
        something else, the advisor's policies), or "nothing" when IPython displays the DataFrame right after
        (a bare call), in the same view."""
        from IPython.display import HTML

        from gadgetbook.views.result import register, result_html, show_interactive

        register(df)
        self.stop_button.running = False
        if self._handle is not None:
            self._handle.update(HTML("" if show == "nothing" else result_html(df, show_table=show == "all")))
        self.box.close()
        if show == "all":
            show_interactive(df)


def _sliced(batch, start: int):
    import numpy as np

    index = np.arange(start, rows(batch))
    return {k: v.take(index) for k, v in batch.items()}


def watch(run: Run, max_rows: int = 20, refresh: float = 0.25, table: type[LiveTable] | None = None) -> LiveTable:
    """Show a run live until it ends, the Stop button is pressed, or the kernel is interrupted."""
    view = (table or LiveTable)(run, max_rows=max_rows, refresh=refresh)
    view.show()
    try:
        if _reads_messages_while_busy():
            from jupyter_ui_poll import ui_events

            # The click's message would wait until the cell ends; ui_events lets it through.
            with ui_events() as poll:
                _pump(run, view, lambda: poll(20))
        else:
            # Newer kernels cannot read messages from inside a running cell: the button
            # interrupts the kernel instead, which lands here as KeyboardInterrupt.
            _pump(run, view, lambda: None)
    except KeyboardInterrupt:
        view.request_stop()
        run.stop()
        for batch in run.batches():
            if batch is not None:
                view.add(batch)
    view.stop_button.running = False
    view.render(force=True)
    return view


def _reads_messages_while_busy() -> bool:
    """jupyter-ui-poll works with kernels that still have do_one_iteration (ipykernel 6)."""
    from IPython import get_ipython

    kernel = getattr(get_ipython(), "kernel", None)
    return kernel is not None and hasattr(kernel, "do_one_iteration")


def _pump(run: Run, view: LiveTable, poll_ui) -> None:
    for batch in run.batches(wait=0.05):
        poll_ui()
        if batch is not None:
            view.add(batch)
        if view.stop_requested and run.running:
            run.stop()
        view.render()
