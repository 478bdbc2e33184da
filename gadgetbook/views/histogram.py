"""A log2 histogram table drawn as bar charts with matplotlib: a PNG that stays in the saved notebook."""

from __future__ import annotations

import io

HIST_COLUMNS = ("slot", "low", "high", "count")
MAX_PANELS = 6


def is_histogram(df) -> bool:
    return all(c in df.columns for c in HIST_COLUMNS)


def _short(v: int) -> str:
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if v >= 4 * size:
            return f"{round(v / size)}{unit}"
    return str(v)


def _label(low: int, high: int) -> str:
    return _short(low) if low == high else f"{_short(low)}-{_short(high)}"


def histogram_png(df, title: str = "") -> bytes:
    """One bar chart per key (all rows at once when the histogram has no key), the newest reading only."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    if "timestamp" in df.columns and len(df):
        df = df[df["timestamp"] == df["timestamp"].max()]
    keys = [c for c in df.columns if c not in (*HIST_COLUMNS, "node", "timestamp")]
    groups = list(df.groupby(keys, sort=True, observed=True)) if keys else [((), df)]
    groups = groups[:MAX_PANELS]
    panels = max(len(groups), 1)
    fig = Figure(figsize=(7.5, 2.4 * panels), dpi=100)
    axes = fig.subplots(panels, 1, squeeze=False)[:, 0]
    for ax, (key, part) in zip(axes, groups or [((), df)]):
        part = part.groupby(["slot", "low", "high"], sort=True, observed=True)["count"].sum().reset_index()
        labels = [_label(int(lo), int(hi)) for lo, hi in zip(part["low"], part["high"])]
        ax.bar(range(len(part)), part["count"].to_numpy(), color="#4878a8")
        ax.set_xticks(range(len(part)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("count")
        name = ", ".join(f"{k}={v}" for k, v in zip(keys, key if isinstance(key, tuple) else (key,)))
        ax.set_title(" ".join(p for p in (title, name) if p), fontsize=9, loc="left")
    if not len(df):
        axes[0].text(0.5, 0.5, "empty", ha="center", va="center", transform=axes[0].transAxes)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
