"""The live view of a run in a notebook: newest rows, counters and a Stop button, then the final view."""

from __future__ import annotations

import html
import time
from collections import deque

from gadgetbook.run_handle import Run, rows
from gadgetbook.views.summary import summary_line
from gadgetbook.views.table import shown_columns, text_columns

_CELL_CHARS = 96


class LiveTable:
    """An ipywidgets view of a live run. It re-renders at most every `refresh` seconds and
    never holds more than `max_rows` rows in the page, whatever the event rate."""

    def __init__(self, run: Run, max_rows: int = 20, refresh: float = 0.25) -> None:
        import ipywidgets as w

        self.run = run
        self.max_rows = max_rows
        self.refresh = refresh
        self.columns = shown_columns(run.columns, pods=run.targets.startswith("pods"))
        self._rows: deque[list[str]] = deque(maxlen=max_rows)
        self._dirty = True
        self._last_render = 0.0
        self.renders = 0
        self.counters = w.HTML()
        self.counters.add_class("gadgetbook-counters")
        from gadgetbook.views.stop_button import StopButton, kernel_id

        self.stop_button = StopButton(kernel_id=kernel_id())
        self.stop_button.observe(lambda _: self.request_stop(), names="clicked")
        self.table = w.HTML()
        self.box = w.VBox([w.HBox([self.stop_button, self.counters]), self.table])
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
        if n > self.max_rows:  # only the newest rows can be shown: convert just those
            batch = _sliced(batch, n - self.max_rows)
        cols = text_columns(batch, self.columns)
        for row in zip(*(cols[c] for c in self.columns)):
            self._rows.append([_cell(c, v) for c, v in zip(self.columns, row)])
        self._dirty = True

    def render(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (not self._dirty or now - self._last_render < self.refresh):
            return
        c = self.run.counters
        self.counters.value = (
            f"<b>{html.escape(self.run.gadget)}</b> &middot; {c.events:,} events &middot; "
            f"{c.lost_total:,} lost &middot; {c.elapsed:.1f} s &middot; {html.escape(self.run.targets)}"
        )
        head = "".join(f"<th>{html.escape(col)}</th>" for col in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in self._rows)
        self.table.value = (f'<table class="gadgetbook-table"><thead><tr>{head}</tr></thead>'
                            f"<tbody>{body}</tbody></table>")
        self._dirty = False
        self._last_render = now
        self.renders += 1

    def finish(self, df, show_table: bool) -> None:
        """Replace the widget with static HTML, so the saved notebook reads without a kernel."""
        from IPython.display import HTML

        final = final_html(df, show_table)
        self.stop_button.running = False
        if self._handle is not None:
            self._handle.update(HTML(final))
        self.box.close()


def _sliced(batch, start: int):
    import numpy as np

    index = np.arange(start, rows(batch))
    return {k: v.take(index) for k, v in batch.items()}


def _cell(column: str, value) -> str:
    text = value[11:] if column == "timestamp" else ("" if value is None else str(value))
    if len(text) > _CELL_CHARS:
        text = text[: _CELL_CHARS - 1] + "…"
    return html.escape(text)


def final_html(df, show_table: bool, max_rows: int = 10) -> str:
    """Summary line, and (unless the DataFrame is shown anyway) a head/tail preview of it."""
    summary = f'<div class="gadgetbook-summary"><b>{html.escape(summary_line(df.attrs, len(df)))}</b></div>'
    table = ""
    if show_table:
        table = df.to_html(max_rows=max_rows, max_cols=20, show_dimensions=True, classes="gadgetbook-table",
                           border=0, index=False)
    return f'<div class="gadgetbook-final">{summary}{table}</div>'


def show_summary(df) -> None:
    """In a running notebook kernel, display the final view's summary line; elsewhere do nothing."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return
    from IPython.display import HTML, display

    if hasattr(df, "summary") and hasattr(df, "samples"):  # a Profile: its own summary sentence
        import html

        display(HTML(f'<div class="gadgetbook-final"><div class="gadgetbook-summary"><b>'
                     f'{html.escape(df.summary())}</b></div></div>'))
        return
    display(HTML(final_html(df, show_table=False)))


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
