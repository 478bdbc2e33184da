"""The interactive table for results longer than a screen: Perspective's grid (sort, filter, search, scroll
through every row), its data kept in the kernel and only the visible rows sent to the page; its front-end code
comes from the kernel when shown, so a saved notebook does not carry it.

Chosen over itables and ipydatagrid by benchmarks/tables.py: with 1,000,000 rows it is on screen in seconds with a
flat page heap, where the other two send every row to the page; streamed rows are appended, not resent.
"""

from __future__ import annotations

import functools
from pathlib import Path
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


def arrow_bytes(frame) -> bytes:
    """The frame as an Arrow IPC stream, without its index (the grid would show it as a column)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@functools.cache
def _grid_class() -> type:
    """Perspective's widget, its front end fetched from the kernel when shown (grid_loader.js) rather than kept
    in its state: Perspective's bundle is over 6 MB, which every saved grid would otherwise carry."""
    import perspective.widget as pw

    static = Path(pw.__file__).parent / "static"

    class Grid(pw.PerspectiveWidget):
        _esm = Path(__file__).with_name("grid_loader.js")
        _css = ""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.on_msg(self._send_code)

        def _send_code(self, _widget, content, _buffers) -> None:
            if isinstance(content, dict) and content.get("type") == "gadgetbook-grid-code?":
                self.send({"type": "gadgetbook-grid-code"}, [_read(static / "perspective-anywidget.js"),
                                                             _read(static / "perspective-anywidget.css")])

    return Grid


@functools.cache
def _read(path: Path) -> bytes:
    return path.read_bytes()


def grid(df, layout: Layout) -> Any:
    """A Perspective grid over the result's shown columns."""
    frame = grid_frame(df, layout)
    title = f"{df.attrs.get('gadget', 'result')}: {len(df):,} rows" if hasattr(df, "attrs") else None
    # Numbers without a unit are ids (pid, port, fd): written without thousands separators, as in the static
    # table. The settings panel (sort, filter, columns) opens from the grid's own button.
    ids = {c: {"number_format": {"useGrouping": False}} for c in frame.columns
           if frame[c].dtype.kind in "iu" and c not in layout.units}
    w = _grid_class()(arrow_bytes(frame), plugin="Datagrid", columns=list(frame.columns), settings=False,
                      title=title, columns_config=ids)
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
