"""An investigation's events laid out for a timeline: a lane per pod or container, a colour per gadget, and
either every event (few enough to hover one by one) or counts per lane, gadget and time bin (any number)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Gadget colours (colour-blind friendly, Okabe-Ito), in the order gadgets come.
COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_COMMON = {"timestamp", "node", "namespace", "pod", "container", "pid", "tid", "comm", "uid", "gid", "mntns_id",
           "netns", "id"}
MAX_MARKS = 5000
BINS = 1200


@dataclass
class TimelineData:
    lanes: list[str]
    gadgets: list[str]
    t0: int  # ns since the epoch
    t1: int
    mode: str  # "marks" (every event) or "bins" (counts)
    marks: np.ndarray | None  # structured: t (ms since t0, f8), lane (u2), gadget (u1)
    details: list[str]
    counts: np.ndarray | None  # (lanes, gadgets, bins) u4
    total: int

    @property
    def colors(self) -> list[str]:
        return [COLORS[i % len(COLORS)] for i in range(len(self.gadgets))]


def lane_names(df: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """A lane per pod (namespace/pod) in a cluster, per container on a host; host processes share one.
    Returns each row's index into the lane names of this frame (computed once per distinct pod or container)."""
    from gadgetbook.investigation.joins import per_distinct

    lanes = per_distinct(df, ["namespace", "pod", "container"],
                         lambda n, p, c: f"{n}/{p}" if p else (c or "(host)"))
    codes, names = pd.factorize(lanes)
    return codes, list(names)


def _detail(gadget: str, df: pd.DataFrame) -> list[str]:
    shown = [c for c in df.columns if c not in _COMMON][:6]
    stamp = df["timestamp"].dt.strftime("%H:%M:%S.%f").str[:-3]
    text = gadget + " " + stamp + " " + df["comm"].astype(str) + "[" + df["pid"].astype(str) + "]" \
        if {"comm", "pid"} <= set(df.columns) else gadget + " " + stamp
    for c in shown:
        text = text + " " + c + "=" + df[c].astype(str)
    return text.tolist()


def layout(frames: dict[str, pd.DataFrame], max_marks: int = MAX_MARKS, bins: int = BINS) -> TimelineData:
    """The lanes, gadgets and events (or counts) of these DataFrames, on one time axis."""
    parts = []
    for g, df in frames.items():
        if "timestamp" in df and len(df):
            parts.append((g, df))
    gadgets = [g for g, _ in parts]
    lane_of = [lane_names(df) for _, df in parts]
    lanes = sorted({lane for _, names in lane_of for lane in names}, key=lambda n: (n == "(host)", n))
    index = {name: i for i, name in enumerate(lanes)}
    stamps = [df["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64) for _, df in parts]
    total = sum(len(s) for s in stamps)
    if not total:
        return TimelineData([], [], 0, 0, "marks", None, [], None, 0)
    t0 = min(int(s.min()) for s in stamps)
    t1 = max(int(s.max()) for s in stamps)
    t1 = max(t1, t0 + 1_000_000)  # at least a millisecond wide
    lane_idx = [np.array([index[n] for n in names], dtype=np.int64)[codes] for codes, names in lane_of]
    if total <= max_marks:
        marks = np.zeros(total, dtype=[("t", "<f8"), ("lane", "<u2"), ("gadget", "u1"), ("pad", "u1")])
        details: list[str] = []
        at = 0
        for gi, ((g, df), s, li) in enumerate(zip(parts, stamps, lane_idx)):
            n = len(s)
            marks["t"][at:at + n] = (s - t0) / 1e6
            marks["lane"][at:at + n] = li
            marks["gadget"][at:at + n] = gi
            details += _detail(g, df)
            at += n
        return TimelineData(lanes, gadgets, t0, t1, "marks", marks, details, None, total)
    counts = np.zeros(len(lanes) * len(gadgets) * bins, dtype=np.int64)
    width = (t1 - t0) / bins
    for gi, (s, li) in enumerate(zip(stamps, lane_idx)):
        b = np.minimum(((s - t0) / width).astype(np.int64), bins - 1)
        counts += np.bincount((li * len(gadgets) + gi) * bins + b, minlength=len(counts))
    return TimelineData(lanes, gadgets, t0, t1, "bins", None, [],
                        counts.reshape(len(lanes), len(gadgets), bins).astype(np.uint32), total)
