"""The static timeline: a PNG drawn with matplotlib (lanes, marks coloured by gadget, the brushed span), kept
in saved notebooks where the interactive one needs a kernel."""

from __future__ import annotations

import io
import os

import numpy as np

from gadgetbook.views.flameimage import FlameImage
from gadgetbook.views.timeline_data import layout


def render_png(investigation, path: str | os.PathLike | None = None, width: int = 1200) -> FlameImage:
    from matplotlib.figure import Figure

    data = layout(investigation.frames)
    dpi = 100
    lanes = max(1, len(data.lanes))
    fig = Figure(figsize=(width / dpi, (1.2 + 0.32 * lanes)), dpi=dpi)
    ax = fig.add_axes((0.16, 0.12 if lanes > 3 else 0.25, 0.82, 0.72 if lanes > 3 else 0.55))
    total_s = (data.t1 - data.t0) / 1e9 if data.total else 1.0
    rows = max(1, len(data.gadgets))
    h = 0.8 / rows
    if data.mode == "marks" and data.total:
        m = data.marks
        t = m["t"] / 1e3
        for gi, (name, color) in enumerate(zip(data.gadgets, data.colors)):
            sel = m["gadget"] == gi
            y = m["lane"][sel] - 0.4 + gi * h + h / 2
            ax.scatter(t[sel], y, marker="|", s=60, color=color, linewidths=1.2, label=name)
    elif data.total:
        # Counts per bin as one image: a row of pixels per gadget in each lane, darker where more happened.
        bins = data.counts.shape[2]
        peak = max(1, int(data.counts.max()))
        img = np.zeros((lanes * (rows + 1), bins, 4))
        for gi, color in enumerate(data.colors):
            rgb = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
            n = data.counts[:, gi, :].astype(float)
            rows_at = np.arange(lanes) * (rows + 1) + gi
            img[rows_at, :, :3] = rgb
            img[rows_at, :, 3] = np.where(n > 0, 0.25 + 0.75 * np.log1p(n) / np.log1p(peak), 0)
        ax.imshow(img, extent=(0, total_s, lanes - 0.5, -0.5), aspect="auto", interpolation="nearest")
        for name, color in zip(data.gadgets, data.colors):
            ax.plot([], [], color=color, lw=4, label=name)
    if investigation.span:
        a, b = investigation.span
        ax.axvspan((a.value - data.t0) / 1e9, (b.value - data.t0) / 1e9, color="#1e64c8", alpha=0.15)
    ax.set_yticks(range(len(data.lanes)), [n if len(n) <= 28 else "…" + n[-27:] for n in data.lanes], fontsize=8)
    ax.set_ylim(len(data.lanes) - 0.5, -0.5)
    ax.set_xlim(0, total_s)
    start = np.datetime64(data.t0, "ns") if data.total else None
    ax.set_xlabel(f"seconds from {np.datetime_as_string(start, unit='ms')}" if start is not None else "seconds")
    ax.set_title(f"{data.total:,} events of {', '.join(data.gadgets) or 'no gadget'} "
                 f"in {len(data.lanes)} lanes", fontsize=10)
    if data.gadgets:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18 if lanes > 3 else -0.35), ncol=len(data.gadgets),
                  frameon=False, fontsize=8)
    ax.grid(axis="x", color="#dddddd")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    image = FlameImage(buf.getvalue(), f"timeline of {data.total:,} events")
    if path is not None:
        image.save(path)
    return image
