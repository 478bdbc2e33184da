"""A top gadget's drained map -> one batch of columns per interval, sorted and cut to the rows asked for."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from gadgetbook.frames.coded import Coded, coded, factorize
from gadgetbook.frames.decode import CATEGORICAL_FORMATS, ContainerNames
from gadgetbook.frames.formats import decode_cstrings, format_column

if TYPE_CHECKING:
    from gadgetbook.catalog.spec import GadgetSpec

TOP_COMMON = ("timestamp", "node", "namespace", "pod", "container", "pid", "comm", "uid")


class TopDecoder:
    """Turns the (keys, values) read from a top gadget's map into ordered columns."""

    def __init__(self, spec: GadgetSpec, node: str, containers: ContainerNames) -> None:
        self.spec = spec
        self.node = node
        self.containers = containers
        self.layout = spec.top_layout
        self.columns = [c for c in self.layout.columns if not c.hidden]
        self.common = [c for c in TOP_COMMON if c in ("timestamp", "node", "namespace", "pod", "container")
                       or c in self.layout.common]
        self.categorical = frozenset(c.name for c in self.columns if c.format in CATEGORICAL_FORMATS)

    def names(self) -> list[str]:
        tail = ["mntns_id"] if "mntns_id" in self.layout.common else []
        return [*self.common, *(c.name for c in self.columns), *tail]

    def empty(self) -> dict[str, np.ndarray | Coded]:
        return self.decode(np.empty(0, self.layout.key), np.empty(0, self.layout.value), 0)

    def decode(self, keys: np.ndarray, values: np.ndarray, wall_ns: int) -> dict[str, np.ndarray | Coded]:
        n = len(keys)
        fields = {name: keys[name] for name in keys.dtype.names} | {name: values[name] for name in values.dtype.names}
        out: dict[str, np.ndarray | Coded] = {}
        out["timestamp"] = np.full(n, wall_ns, dtype="datetime64[ns]")
        out["node"] = Coded(np.zeros(n, dtype=np.int32), np.array([self.node], dtype="O"))
        mntns = fields.get("mntns_id", np.zeros(n, dtype=np.uint64))
        codes, uniques = factorize(mntns)
        named = self.containers.names(uniques.tolist())
        for i, key in enumerate(("namespace", "pod", "container")):
            out[key] = coded(np.arange(len(named)), lambda j, i=i: named[j][i]).take(codes)
        for name in self.layout.common:
            if name == "comm":
                out[name] = decode_cstrings(fields[name])
            elif name != "mntns_id":
                out[name] = fields[name]
        for col in self.columns:
            out[col.name] = format_column(fields, col)
        if "mntns_id" in self.layout.common:
            out["mntns_id"] = mntns
        return {name: out[name] for name in self.names()}


def order_rows(batch: dict[str, Any], sort: tuple[tuple[str, bool], ...], max_rows: int) -> dict[str, Any]:
    """The batch sorted by the keys (first key first) and cut to max_rows (0: all)."""
    n = len(batch["timestamp"])
    if n == 0:
        return batch
    index = np.arange(n)
    if sort:
        ranks = []
        for name, descending in sort:
            values = batch[name].values() if isinstance(batch[name], Coded) else batch[name]
            rank = np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)
            ranks.append(-rank if descending else rank)
        index = np.lexsort(ranks[::-1])  # lexsort's last key is the primary one
    if max_rows:
        index = index[:max_rows]
    return {k: v.take(index) for k, v in batch.items()}


def wall_now_ns() -> int:
    return time.time_ns()
