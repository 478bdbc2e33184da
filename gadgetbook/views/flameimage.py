"""The static flame graph: a PNG drawn with matplotlib, shown inline and kept in saved notebooks."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from gadgetbook.views.flamecolors import node_colors
from gadgetbook.views.flametree import FlameTree

ROW_PX = 17
CHAR_PX = 6.5  # width of one character of the label font, for cutting labels to fit


class FlameImage:
    """PNG bytes that display inline (IPython) and can be saved."""

    def __init__(self, png: bytes, title: str = "") -> None:
        self.png = png
        self.title = title

    def _repr_png_(self) -> bytes:
        return self.png

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_bytes(self.png)
        return path

    def __repr__(self) -> str:
        return f"<FlameImage {len(self.png):,} bytes: {self.title}>"


def render_png(tree: FlameTree, path: str | os.PathLike | None = None, width: int = 1200, color_by: str = "kind",
               title: str = "", max_rows: int = 60) -> FlameImage:
    """Draw frames at least ~half a pixel wide; label those wide enough to read."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    if tree.total <= 0:
        nodes = np.zeros(1, dtype=np.int64)
    else:
        nodes = tree.visible(0, min_fraction=0.5 / width)
    nodes = nodes[tree.depth[nodes] < max_rows]  # very deep stacks: the top rows are cut, not squeezed
    rows = int(tree.depth[nodes].max()) + 1 if len(nodes) else 1
    height = (rows + 2) * ROW_PX
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1 - 1.6 * ROW_PX / height))
    total = max(float(tree.total), 1e-9)
    x0 = tree.x[nodes] / total
    x1 = (tree.x[nodes] + tree.value[nodes]) / total
    y0 = tree.depth[nodes].astype(float)
    y1 = y0 + 0.92
    verts = np.stack([np.stack([x0, y0], 1), np.stack([x0, y1], 1), np.stack([x1, y1], 1), np.stack([x1, y0], 1)],
                     axis=1)
    colors = node_colors(tree, nodes, color_by)
    ax.add_collection(PolyCollection(verts, facecolors=colors, edgecolors="none"))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, rows)
    ax.axis("off")
    px = (x1 - x0) * width
    for i in np.flatnonzero(px > 3 * CHAR_PX).tolist():
        label = tree.name(int(nodes[i]))
        fits = int(px[i] / CHAR_PX) - 1
        if len(label) > fits:
            label = label[: max(fits - 1, 1)] + "…"
        ax.text(x0[i] + 2 / width, y0[i] + 0.45, label, fontsize=8, va="center", ha="left", clip_on=True,
                family="DejaVu Sans Mono")
    if title:
        fig.text(0.005, 1 - 0.8 * ROW_PX / height, title, fontsize=9, va="center", ha="left")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    image = FlameImage(buf.getvalue(), title)
    if path is not None:
        image.save(path)
    return image
