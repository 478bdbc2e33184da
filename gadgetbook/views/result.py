"""The final view of a run's DataFrame, the same wherever it is shown: the summary line with its notes, the
table in the live table's columns and cells (head and tail when long), and for results longer than a screen an
interactive table (sort, filter, search) while the kernel runs. The static part stays in the saved notebook."""

from __future__ import annotations

import html
import sys
import weakref
from typing import Any

from gadgetbook.views.summary import notes, summary_line
from gadgetbook.views.table import STYLE, Layout, filled, html_table

# A screen: up to this many rows are shown whole, longer results as head and tail (%config
# GadgetMagics.preview_rows sets it).
SETTINGS = {"preview_rows": 20}

# The DataFrames gadgetbook handed out, by id: these (not frames derived from them) get the result view.
_RESULTS: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


def register(df):
    """Mark a DataFrame as a run's result, shown with the result view."""
    _RESULTS[id(df)] = df
    return df


def is_result(df) -> bool:
    return _RESULTS.get(id(df)) is df


def layout_of(df) -> Layout:
    from gadgetbook.kinds import recorded_kind

    try:
        kind = recorded_kind(df.attrs)
    except Exception:  # noqa: BLE001 - a frame from elsewhere: no units, the default order
        kind = None
    return Layout.for_kind(kind, list(df.columns))


def summary_html(attrs: dict[str, Any], rows: int) -> str:
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes(attrs))
    return (f'<div class="gadgetbook-summary"><b>{html.escape(summary_line(attrs, rows))}</b></div>'
            + (f'<ul class="gadgetbook-notes">{items}</ul>' if items else ""))


def table_html(df, preview_rows: int | None = None) -> str:
    """The rows as the live table shows them: the gadget's columns first, empty ones left out."""
    preview_rows = preview_rows or SETTINGS["preview_rows"]
    layout = layout_of(df)
    shown = layout.shown(filled(df, layout.order))
    n = len(df)
    if n <= preview_rows:
        return html_table(shown, layout.cells(df, shown))
    half = preview_rows // 2
    part = df.iloc[list(range(half)) + list(range(n - half, n))]
    return html_table(shown, layout.cells(part, shown), gap_after=half,
                      gap_text=f"… {n - 2 * half:,} more rows (all {n:,} are in the DataFrame) …")


def result_html(df, show_table: bool = True, preview_rows: int | None = None) -> str:
    """Summary line, notes and (unless `show_table` is False) the table, as one static HTML block."""
    table = table_html(df, preview_rows) if show_table and len(df) else ""
    return f'<div class="gadgetbook-final">{STYLE}{summary_html(df.attrs, len(df))}{table}</div>'


def _in_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_result(df, preview_rows: int | None = None) -> None:
    """Display the result view; results longer than the preview get the interactive table beneath it."""
    from IPython.display import HTML, display

    display(HTML(result_html(df, preview_rows=preview_rows)))
    show_interactive(df, preview_rows)


def show_interactive(df, preview_rows: int | None = None) -> None:
    """Beneath the static view of a result longer than the preview, the interactive table (a live kernel's)."""
    if len(df) > (preview_rows or SETTINGS["preview_rows"]) and _in_kernel():
        from gadgetbook.views.grid import show_grid

        show_grid(df, layout_of(df))


def show_summary(df) -> None:
    """In a running notebook kernel, display the final view's summary line; elsewhere do nothing."""
    if not _in_kernel():
        return
    from IPython.display import HTML, display

    if hasattr(df, "summary") and hasattr(df, "samples"):  # a Profile: its own summary sentence
        display(HTML(f'<div class="gadgetbook-final"><div class="gadgetbook-summary"><b>'
                     f'{html.escape(df.summary())}</b></div></div>'))
        return
    display(HTML(result_html(df, show_table=False)))


def display_frame(df) -> None:
    """IPython's display of any DataFrame: a run's result gets the result view, any other frame pandas' own."""
    if is_result(df):
        show_result(df)
        return
    from IPython import get_ipython
    from IPython.display import display

    own = get_ipython().display_formatter.ipython_display_formatter
    own.enabled = False  # this very hook: off while pandas' own formats are computed
    try:
        display(df)
    finally:
        own.enabled = True
