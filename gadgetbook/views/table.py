"""Rows as text for people: which columns to show and how, shared by the terminal and the live table."""

from __future__ import annotations

import numpy as np

from gadgetbook.frames.coded import Coded

# Columns shown by default; every column stays in the DataFrame and in -o json.
HIDDEN = frozenset({"node", "namespace", "pod", "tid", "gid", "mntns_id"})
HIDDEN_WITH_PODS = frozenset({"tid", "gid", "mntns_id", "container"})


def shown_columns(columns: list[str], pods: bool = False) -> list[str]:
    hidden = HIDDEN_WITH_PODS if pods else HIDDEN
    return [c for c in columns if c not in hidden]


def text_columns(batch, columns: list[str], ts_unit: str = "ms") -> dict[str, list]:
    """Plain Python values per column; timestamps as ISO text."""
    out = {}
    for c in columns:
        v = batch[c]
        if isinstance(v, Coded):
            v = v.values()
        elif c == "timestamp":
            v = np.datetime_as_string(v, unit=ts_unit)
        out[c] = v.tolist()
    return out
