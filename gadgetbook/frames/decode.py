"""Raw event arrays -> named columns: common columns first, formats applied, containers named."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

import numpy as np

from gadgetbook.frames.coded import Coded, coded, factorize
from gadgetbook.frames.formats import EXPANDING, decode_cstrings, format_column

if TYPE_CHECKING:
    from gadgetbook.catalog.spec import GadgetSpec

COMMON_COLUMNS = ("timestamp", "node", "namespace", "pod", "container", "pid", "tid", "comm", "uid", "gid")
CATEGORICAL = frozenset({"node", "namespace", "pod", "container", "comm"})
CATEGORICAL_FORMATS = frozenset({"errno", "open_flags", "octal", "ip_protocol", "ip_address", "bind_options",
                                 "tcp_event_type", "direction", "capability", "cap_verdict", "cap_caller", "syscall"})


class ContainerNames(Protocol):
    def names(self, mntns_ids: list[int]) -> list[tuple[str, str, str]]:
        """(namespace, pod, container) for each mount-namespace id; empty strings for the host."""


class NoContainers:
    """Container names for a decoder that only describes columns (the client of a cluster run)."""

    def names(self, mntns_ids: list[int]) -> list[tuple[str, str, str]]:
        return [("", "", "")] * len(mntns_ids)


def boot_to_wall_ns() -> int:
    """Offset that turns CLOCK_BOOTTIME (what BPF stamps) into wall-clock time.

    Each reading brackets the boot clock between two wall-clock reads, and the tightest of a few is kept: a
    thread that loses the GIL or the CPU between two reads would be off by as long as it waited (20 ms seen
    while gadgets start side by side on a busy host), and one gadget's events would then sort before
    another's that came first.
    """
    best_width, best = None, 0
    for _ in range(8):
        before = time.clock_gettime_ns(time.CLOCK_REALTIME)
        boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        after = time.clock_gettime_ns(time.CLOCK_REALTIME)
        if best_width is None or after - before < best_width:
            best_width, best = after - before, (before + after) // 2 - boot
        if best_width < 20_000:
            break
    return best


def column_names(columns) -> list[str]:
    """Names of the columns a gadget's own fields make (a field of an expanding format makes several)."""
    out = []
    for c in columns:
        out += [name for name, _ in EXPANDING[c.format].columns] if c.format in EXPANDING else [c.name]
    return out


def column_docs(columns) -> list[tuple[str, str]]:
    """(name, doc) of each column a gadget's own fields make."""
    out = []
    for c in columns:
        out += list(EXPANDING[c.format].columns) if c.format in EXPANDING else [(c.name, c.doc)]
    return out


class Decoder:
    """Turns batches of one gadget's raw events into ordered columns (numpy arrays)."""

    def __init__(self, spec: GadgetSpec, node: str, containers: ContainerNames, offset_ns: int | None = None) -> None:
        self.spec = spec
        self.node = node
        self.containers = containers
        # The traced host's clock: a client decoding a node's events uses the offset the node sent.
        self.offset_ns = boot_to_wall_ns() if offset_ns is None else offset_ns
        self.columns = [c for c in spec.event_columns if not c.hidden]
        self.categorical = frozenset(c.name for c in self.columns if c.format in CATEGORICAL_FORMATS).union(
            *(EXPANDING[c.format].categorical for c in self.columns if c.format in EXPANDING))

    def names(self) -> list[str]:
        return [*COMMON_COLUMNS, *column_names(self.columns), "mntns_id"]

    def empty(self) -> dict[str, np.ndarray]:
        """Zero rows with every column's dtype: the shape of a run that saw nothing."""
        return self.decode(np.empty(0, dtype=self.spec.event_dtype))

    def decode(self, events: np.ndarray) -> dict[str, np.ndarray | Coded]:
        n = len(events)
        out: dict[str, np.ndarray] = {}
        out["timestamp"] = (events["timestamp_raw"].astype("<i8") + self.offset_ns).view("datetime64[ns]")
        out["node"] = Coded(np.zeros(n, dtype=np.int32), np.array([self.node], dtype="O"))
        mntns = events["mntns_id"]
        codes, uniques = factorize(mntns)
        named = self.containers.names(uniques.tolist())
        for i, key in enumerate(("namespace", "pod", "container")):
            out[key] = coded(np.arange(len(named)), lambda j, i=i: named[j][i]).take(codes)
        for key in ("pid", "tid"):
            out[key] = events[key]
        out["comm"] = decode_cstrings(events["comm"], padded=True)
        out["uid"] = events["uid"]
        out["gid"] = events["gid"]
        for col in self.columns:
            values = format_column(events, col)
            if isinstance(values, dict):  # a format that makes several columns
                out.update(values)
            else:
                out[col.name] = values
        out["mntns_id"] = mntns
        return out
