"""The interactive table for results longer than a screen: Perspective's grid (sort, filter, search, scroll
through every row), its data kept in the kernel and only the visible rows sent to the page.

Chosen over itables and ipydatagrid by benchmarks/tables.py: with 1,000,000 rows it is on screen in seconds with a
flat page heap, where the other two send every row to the page; streamed rows are appended, not resent.
"""

from __future__ import annotations

from typing import Any

from gadgetbook.views.table import Layout, filled

GRID_HEIGHT = "420px"


def grid_frame(df, layout: Layout):
    """The columns the static view shows, in its order, with types the grid reads (categories as text)."""
    shown = layout.shown(filled(df, layout.order))
    out = df[shown].copy()
    for name in shown:
        col = out[name]
        if hasattr(col, "cat"):
            out[name] = col.astype("str")
        elif col.dtype.kind == "u":  # the grid has no unsigned integers
            out[name] = col.astype("int64") if col.dtype.itemsize < 8 else col.astype("float64")
    return out


def grid(df, layout: Layout) -> Any:
    """A Perspective widget over the result's shown columns."""
    from perspective.widget import PerspectiveWidget

    frame = grid_frame(df, layout)
    w = PerspectiveWidget(frame, plugin="Datagrid", columns=list(frame.columns))
    w.layout.height = GRID_HEIGHT
    w.add_class("gadgetbook-grid")
    return w


def show_grid(df, layout: Layout) -> Any:
    """Display the grid; where widgets do not render (GitHub, nbconvert) its place says what it was."""
    from IPython.display import display

    w = grid(df, layout)
    note = (f"Interactive table of all {len(df):,} rows (sort, filter, search); it needs the notebook's running "
            "kernel. The table above shows the first and last rows.")
    display({"application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0,
                                                          "model_id": w.model_id},
             "text/plain": note}, raw=True)
    return w
