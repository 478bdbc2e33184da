"""A loaded program's maps read into tables: hash, array and per-CPU maps (per-CPU values summed over the
CPUs), and log2 histograms as one row per bucket; keys and values are laid out from the object's BTF."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from gadgetbook.catalog.layout import struct_dtype
from gadgetbook.errors import GadgetError
from gadgetbook.frames.coded import Coded
from gadgetbook.frames.formats import decode_cstrings
from gadgetbook.kernel import libbpf
from gadgetbook.kernel.btf import STRUCT, Btf, BtfError
from gadgetbook.kernel.maps import MapReader

HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH = 1, 2, 5, 6, 9, 10
PERF_EVENT_ARRAY, RINGBUF = 4, 27
READABLE = {HASH: "hash", ARRAY: "array", PERCPU_HASH: "percpu_hash", PERCPU_ARRAY: "percpu_array",
            LRU_HASH: "lru_hash", LRU_PERCPU_HASH: "lru_percpu_hash"}
PER_CPU = {PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH}
# gadget.h's own maps: the container filter and the loss counter are not the program's results.
GADGET_MAPS = frozenset({"gadget_mntns_filter", "gadget_lost", "gadget_events"})
HIST_NAME = re.compile(r"hist|dist", re.I)
# Bucket of a log2 slot: libbpf-tools' log2 puts v in slot floor(log2 v) (slot 0: 0 and 1); bcc's bpf_log2l
# puts it in slot floor(log2 v) + 1 (slot 0: 0 only).
LOG2_STYLES = ("libbpf", "bcc")


def log2_bucket(slot: np.ndarray, style: str) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of each log2 slot, inclusive."""
    slot = slot.astype(np.int64)
    if style == "bcc":
        low = np.where(slot > 0, np.left_shift(1, np.maximum(slot - 1, 0)), 0)
        high = np.where(slot > 0, np.left_shift(1, slot) - 1, 0)
    else:
        low = np.where(slot > 0, np.left_shift(1, slot), 0)
        high = np.left_shift(1, slot + 1) - 1
    return low.astype(np.uint64), high.astype(np.uint64)


@dataclass(frozen=True)
class MapLayout:
    """How one map's entries read: key and value dtypes, their columns, and what kind of table it makes."""

    name: str
    type: int
    key: np.dtype
    value: np.dtype  # one CPU's value
    key_columns: tuple[str, ...]
    value_columns: tuple[str, ...]
    histogram: str | None  # None, "slots" (a value struct holding `slots[]`) or "keyed" (the key is the slot)
    capacity: int


def _scalar_or_struct(btf: Btf, type_id: int, size: int, what: str) -> tuple[np.dtype, tuple[str, ...]]:
    """A key or value as a dtype with named fields: a struct's fields, or one field named `what`."""
    if type_id:
        stripped = btf.strip(type_id)
        if btf.kind(stripped) == STRUCT:
            dtype, members = struct_dtype(btf, stripped)
            return dtype, tuple(m.name for m in members)
        code, shape = btf.numpy_type(stripped)
        return np.dtype([(what, code, shape)] if shape else [(what, code)]), (what,)
    # No BTF for it (declared by size only): integers when the size says so, bytes otherwise.
    code = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}.get(size, f"V{size}")
    return np.dtype([(what, code)]), (what,)


def _is_int(dtype: np.dtype, columns: tuple[str, ...]) -> bool:
    return len(columns) == 1 and dtype[columns[0]].kind in "iu" and dtype[columns[0]].ndim == 0


def map_layouts(obj, histograms: set[str]) -> dict[str, MapLayout]:
    """The readable maps of a loaded object (gadget.h's and libbpf's internal maps left out)."""
    btf = obj.btf
    out = {}
    for name, m in obj.map_handles().items():
        kind = libbpf.map_type(m)
        if kind not in READABLE or name in GADGET_MAPS or "." in name:
            continue
        try:
            key, key_cols = _scalar_or_struct(btf, libbpf.map_btf_key_type_id(m), libbpf.map_key_size(m), "key")
            value, value_cols = _scalar_or_struct(btf, libbpf.map_btf_value_type_id(m), libbpf.map_value_size(m),
                                                  "value")
        except BtfError as exc:
            raise GadgetError(f"The map {name} cannot be read into a table ({exc}).") from None
        if set(key_cols) & set(value_cols):  # value fields that share a key field's name get a prefix
            renamed = tuple(f"value_{c}" if c in key_cols else c for c in value_cols)
            value = np.dtype({"names": list(renamed), "formats": [value.fields[c][0] for c in value_cols],
                              "offsets": [value.fields[c][1] for c in value_cols], "itemsize": value.itemsize})
            value_cols = renamed
        hist = None
        if value_cols == ("slots",) and value["slots"].ndim == 1:
            hist = "slots"
        elif _is_int(key, key_cols) and _is_int(value, value_cols) and (name in histograms or HIST_NAME.search(name)):
            hist = "keyed"
        elif name in histograms:
            raise GadgetError(f"The map {name} is not a log2 histogram: --hist takes a map whose key is the slot "
                              "(an integer) and whose value a count, or whose value is a struct holding `slots[]`.")
        out[name] = MapLayout(name, kind, key, value, key_cols, value_cols, hist, libbpf.map_max_entries(m))
    missing = histograms - set(out)
    if missing:
        raise GadgetError(f"--hist names no map of the program: {', '.join(sorted(missing))}; "
                          f"its maps: {', '.join(sorted(out)) or 'none'}.")
    return out


class MapTables:
    """Reads every readable map of a loaded object into named tables (each with a `node` column first, and
    `timestamp` when read at intervals)."""

    def __init__(self, obj, node: str, histograms: set[str] = frozenset(), log2: str = "libbpf") -> None:
        self.node = node
        self.log2 = log2
        self.layouts = map_layouts(obj, set(histograms))
        cpus = libbpf.num_possible_cpus()
        self._readers = {}
        for name, lay in self.layouts.items():
            value = lay.value
            if lay.type in PER_CPU:
                # The kernel hands over one value per possible CPU, each padded to 8 bytes.
                padded = np.dtype({"names": list(value.names), "formats": [value.fields[c][0] for c in value.names],
                                   "offsets": [value.fields[c][1] for c in value.names],
                                   "itemsize": (value.itemsize + 7) & ~7})
                value = np.dtype([("cpus", padded, (cpus,))])
            self._readers[name] = MapReader(obj.map_fd(name), lay.capacity, lay.key, value, name=name)

    def read(self, stamped: bool = False) -> dict[str, dict]:
        wall = np.datetime64(time.time_ns(), "ns")
        out = {}
        for name, reader in self._readers.items():
            keys, values = reader.read()
            lay = self.layouts[name]
            if lay.type in PER_CPU:
                values = _sum_cpus(values["cpus"])
            out[name] = self._table(lay, keys, values, wall if stamped else None)
        return out

    def _table(self, lay: MapLayout, keys: np.ndarray, values: np.ndarray, wall) -> dict:
        if len(keys) > 1:
            try:
                order = np.argsort(keys, order=list(lay.key_columns), kind="stable")
                keys, values = keys[order], values[order]
            except (TypeError, ValueError):  # a key numpy cannot order (nested arrays): left as read
                pass
        cols: dict = {}
        if lay.histogram == "keyed":
            cols = histogram_columns(keys[lay.key_columns[0]], values[lay.value_columns[0]], self.log2)
        elif lay.histogram == "slots":
            slots = values["slots"]
            width = slots.shape[1]
            used = np.flatnonzero(slots.any(axis=0))
            last = int(used[-1]) + 1 if len(used) else 0
            n = len(keys)
            index = np.repeat(np.arange(n), last)
            for c in lay.key_columns:
                col = column(keys[c])
                cols[c] = col.take(index) if isinstance(col, Coded) else col[index]
            slot = np.tile(np.arange(last), n).astype(np.int64)
            low, high = log2_bucket(slot, self.log2)
            cols |= {"slot": slot, "low": low, "high": high,
                     "count": slots[:, :min(last, width)].reshape(-1).astype(np.uint64)}
        else:
            cols = {c: column(keys[c]) for c in lay.key_columns} | {c: column(values[c]) for c in lay.value_columns}
        n = len(next(iter(cols.values()))) if cols else 0
        head = {"node": Coded(np.zeros(n, np.int32), np.array([self.node], dtype=object))}
        if wall is not None:
            head["timestamp"] = np.full(n, wall, dtype="datetime64[ns]")
        return head | cols


def histogram_columns(slot: np.ndarray, count: np.ndarray, style: str) -> dict:
    """A histogram keyed by its slot (sorted) as rows slot, low, high, count, up to its last used slot."""
    keep = slice(0, int(np.flatnonzero(count)[-1]) + 1) if count.any() else slice(0, 0)
    slot = slot.astype(np.int64)[keep]
    low, high = log2_bucket(slot, style)
    return {"slot": slot, "low": low, "high": high, "count": count[keep].astype(np.uint64)}


def _sum_cpus(per_cpu: np.ndarray) -> np.ndarray:
    """One value per key: numeric fields summed over the CPUs, others as CPU 0 has them."""
    first = per_cpu[:, 0] if per_cpu.ndim == 2 else per_cpu
    out = np.zeros(len(per_cpu), dtype=first.dtype)
    for name in first.dtype.names:
        field = per_cpu[name]
        out[name] = field.sum(axis=1) if field.dtype.kind in "iuf" else field[:, 0]
    return out


def column(values: np.ndarray):
    """A field as a column: char arrays as text, other arrays as one array per row."""
    if values.dtype.kind == "S":
        return decode_cstrings(values)
    if values.dtype.kind == "V":
        return np.array([bytes(v) for v in values], dtype=object)
    if values.ndim > 1:
        out = np.empty(len(values), dtype=object)
        out[:] = list(values)
        return out
    return values
