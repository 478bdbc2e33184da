"""Runs longer than memory: batches streamed to a Parquet dataset as they arrive, and read back filtered.

A dataset is a folder that pandas, DuckDB, Polars and Spark read as it is (hive partitions):

    DIR/_gadgetbook.json                       the run's facts (gadget, params, targets, counts, columns)
    DIR/node=NODE/hour=2026-12-01T17/part-*.parquet

Timestamps are kept in microseconds (Parquet's TIMESTAMP_MICROS, which Spark reads; it refuses nanoseconds).
Each file is written under a hidden name (readers skip names starting with '.') and renamed when it is
complete, so a reader never sees half a file, even while the run goes on; a file is closed every
`roll_rows` rows or `roll_seconds`, whichever comes first, and at every new hour. Rows are sorted by time
within a file, so a time filter skips whole row groups by their statistics.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gadgetbook.errors import GadgetError
from gadgetbook.frames.coded import Coded

META_FILE = "_gadgetbook.json"
FORMAT_VERSION = 1
PARTITIONS = ("node", "hour")
HOUR_FORMAT = "%Y-%m-%dT%H"


def is_dataset(path: str | os.PathLike) -> bool:
    return (Path(path) / META_FILE).is_file()


def hour_of(ns: np.ndarray) -> np.ndarray:
    """The hour partition value ('2026-12-01T17', UTC) of each timestamp."""
    return np.datetime_as_string(ns.astype("datetime64[h]"), unit="h")


def _arrow(values, name: str):
    import pyarrow as pa

    if isinstance(values, Coded):
        cats = values.categories
        return pa.DictionaryArray.from_arrays(pa.array(values.codes, pa.int32()),
                                              pa.array(cats.tolist() if cats.dtype == object else cats))
    if values.dtype.kind == "M":
        # Microseconds: what every reader takes (Spark refuses Parquet's nanosecond timestamps).
        return pa.array(values.astype("datetime64[us]"), pa.timestamp("us"))
    if values.dtype.kind == "m":
        return pa.array(values.astype("timedelta64[ns]"), pa.duration("ns"))
    return pa.array(values)


class _Part:
    """One file being written: hidden until closed."""

    def __init__(self, folder: Path, schema) -> None:
        import pyarrow.parquet as pq

        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet"
        self.final = folder / name
        self.hidden = folder / f".{name}.tmp"
        self.writer = pq.ParquetWriter(self.hidden, schema, compression="zstd")
        self.rows = 0
        self.opened = time.monotonic()

    def write(self, table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self.writer.close()
        self.hidden.replace(self.final)


class DatasetWriter:
    """Streams batches of one run to a dataset folder; `close()` finishes the open files and the facts."""

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], attrs: dict[str, Any],
                 roll_rows: int = 4_000_000, roll_seconds: float = 60.0, chunk_rows: int = 262_144) -> None:
        self.path = Path(path)
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise GadgetError(f"{self.path} exists and is not an empty folder; --save a dataset to a new folder.")
        self.path.mkdir(parents=True, exist_ok=True)
        self.columns = [c for c in columns if c not in PARTITIONS]
        self.roll_rows, self.roll_seconds, self.chunk_rows = roll_rows, roll_seconds, chunk_rows
        self._parts: dict[tuple[str, str], _Part] = {}
        self._pending: dict[tuple[str, str], list] = {}
        self._pending_rows: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self.rows = 0
        self.files = 0
        self.write_facts(attrs, list(columns))

    def write_facts(self, attrs: dict[str, Any], columns: list[str] | None = None) -> None:
        from gadgetbook.frames import facts

        meta = {"version": FORMAT_VERSION, "attrs": attrs, "partitions": list(PARTITIONS)}
        meta["columns"] = columns if columns is not None else read_facts(self.path)["columns"]
        facts.write_facts(self.path / META_FILE, meta)

    def write(self, batch: dict) -> None:
        """Add one batch (a Run's columns); rows go to the file of their node and hour."""
        import pyarrow as pa

        n = len(batch["timestamp"])
        if not n:
            return
        # Group rows by (node, hour) on integers: the node's code and the hour since the epoch.
        node = batch["node"]
        if isinstance(node, Coded):
            node_codes, node_names = node.codes.astype(np.int64), node.categories
        else:
            node_codes, node_names = pd_factorize(np.asarray(node, dtype=object))
        hours = batch["timestamp"].astype("datetime64[h]").astype(np.int64)
        key = node_codes << 32 | (hours - hours.min())
        if key.min() == key.max():
            groups = [(int(key[0]), None)]
        else:
            uniq, inverse = np.unique(key, return_inverse=True)
            groups = [(int(k), np.flatnonzero(inverse == i)) for i, k in enumerate(uniq.tolist())]
        with self._lock:
            for k, index in groups:
                part = batch if index is None else {c: batch[c].take(index) for c in self.columns}
                rows = n if index is None else len(index)
                table = pa.table({c: _arrow(part[c], c) for c in self.columns})
                hour = np.datetime_as_string(np.datetime64(int(hours.min()) + (k & 0xFFFFFFFF), "h"), unit="h")
                name = (str(node_names[k >> 32]), str(hour))
                self._pending.setdefault(name, []).append(table)
                self._pending_rows[name] = self._pending_rows.get(name, 0) + rows
                self.rows += rows
                if self._pending_rows[name] >= self.chunk_rows:
                    self._flush(name)
            self._roll(time.monotonic())

    def _flush(self, key: tuple[str, str]) -> None:
        import pyarrow as pa

        tables = self._pending.pop(key, [])
        self._pending_rows.pop(key, None)
        if not tables:
            return
        table = pa.concat_tables(tables, promote_options="permissive")
        table = table.unify_dictionaries() if len(tables) > 1 else table
        # Sorted by time within the chunk: the row group's statistics then bound a time filter.
        table = table.sort_by("timestamp")
        part = self._parts.get(key)
        if part is not None and not part.writer.schema.equals(table.schema, check_metadata=False):
            self._close(key)
            part = None
        if part is None:
            node, hour = key
            part = _Part(self.path / f"node={_safe(node)}" / f"hour={hour}", table.schema)
            self._parts[key] = part
        part.write(table.combine_chunks())

    def _close(self, key: tuple[str, str]) -> None:
        part = self._parts.pop(key)
        part.close()
        self.files += 1

    def _roll(self, now: float) -> None:
        current = max((h for _, h in self._parts), default=None)
        for key, part in list(self._parts.items()):
            if part.rows >= self.roll_rows or now - part.opened >= self.roll_seconds or key[1] != current:
                self._flush(key)
                self._close(key)

    def close(self, attrs: dict[str, Any] | None = None) -> None:
        with self._lock:
            for key in list(self._pending):
                self._flush(key)
            for key in list(self._parts):
                self._close(key)
            if attrs is not None:
                self.write_facts(attrs)


def pd_factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from gadgetbook.frames.coded import factorize

    codes, uniques = factorize(values.astype("U"))
    return codes.astype(np.int64), uniques


def _safe(node: str) -> str:
    return node.replace("/", "_") or "_"


def read_facts(path: str | os.PathLike) -> dict[str, Any]:
    from gadgetbook.frames import facts

    return facts.read_facts(Path(path) / META_FILE, FORMAT_VERSION, "a gadgetbook dataset")


def _bound(value) -> np.datetime64 | None:
    import pandas as pd

    if value is None:
        return None
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return np.datetime64(ts.value, "ns")


def read_dataset(path: str | os.PathLike, *, columns: Iterable[str] | None = None, start=None, end=None,
                 pods: Iterable[str] | None = None, containers: Iterable[str] | None = None,
                 nodes: Iterable[str] | None = None):
    """The dataset as a DataFrame, or only the columns, time span [start, end) and pods asked for: files of
    other nodes and hours are not opened, row groups outside the span are skipped, other columns not read."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as ds

    from gadgetbook.frames.decode import CATEGORICAL

    meta = read_facts(path)
    recorded = meta["columns"]
    wanted = list(recorded if columns is None else columns)
    unknown = [c for c in wanted if c not in recorded]
    if unknown:
        raise GadgetError(f"The recording has no column {', '.join(unknown)}; its columns: {', '.join(recorded)}.")
    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    t0, t1 = _bound(start), _bound(end)
    expr = None

    def both(e):
        return e if expr is None else expr & e

    if t0 is not None:
        expr = both(ds.field("hour") >= str(hour_of(np.array([t0]))[0]))
        expr = both(ds.field("timestamp") >= pa.scalar(t0, pa.timestamp("ns")))
    if t1 is not None:
        expr = both(ds.field("hour") <= str(hour_of(np.array([t1]))[0]))
        expr = both(ds.field("timestamp") < pa.scalar(t1, pa.timestamp("ns")))
    for field, values in (("pod", pods), ("container", containers), ("node", nodes)):
        if values is not None:
            values = [values] if isinstance(values, str) else list(values)
            if field == "node":
                values = [_safe(v) for v in values]
            expr = both(ds.field(field).isin(values))
    read = [c for c in wanted if c in dataset.schema.names]
    table = dataset.to_table(columns=read, filter=expr)
    df = table.to_pandas()
    for c in df.columns:
        if c in CATEGORICAL or isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(str).astype("category") if not isinstance(df[c].dtype, pd.CategoricalDtype) \
                else df[c].cat.remove_unused_categories()
    for c in df.columns:
        if df[c].dtype.kind == "M":
            df[c] = df[c].astype("datetime64[ns]")  # the dtype of a live run's DataFrame
    if "timestamp" in df:
        df = df.sort_values("timestamp", kind="stable", ignore_index=True)
    df = df[[c for c in wanted if c in df.columns]]
    df.attrs.update(meta.get("attrs", {}))
    df.attrs["dataset"] = str(path)
    if columns is not None or t0 is not None or t1 is not None or pods or containers or nodes:
        df.attrs["filtered"] = {"columns": None if columns is None else wanted, "start": str(t0) if t0 else None,
                                "end": str(t1) if t1 else None, "pods": pods and list(pods),
                                "containers": containers and list(containers), "nodes": nodes and list(nodes)}
    return df
