"""Recordings: a run's events and facts in one Parquet file, and their replay without a kernel or root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from gadgetbook.errors import GadgetError

META_KEY = b"gadgetbook"
FORMAT_VERSION = 1


def save(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the DataFrame and its `.attrs` (gadget, params, targets, counts) to a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = {"version": FORMAT_VERSION, "attrs": df.attrs}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta, default=str)})
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)  # a reader never sees half a recording
    return path


def load(path: str | os.PathLike) -> pd.DataFrame:
    """The DataFrame a recording holds, with the same dtypes and `.attrs` as when it was saved."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise GadgetError(f"No recording at {path}; record one with --save {path.name}.")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise GadgetError(f"{path} is not a Parquet file ({exc}).") from None
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise GadgetError(f"{path} is a Parquet file but not a gadgetbook recording (no run metadata in it).")
    meta = json.loads(raw)
    if meta.get("version", 0) > FORMAT_VERSION:
        raise GadgetError(f"{path} was recorded by a newer gadgetbook; upgrade to replay it.")
    df = pq.read_table(path).to_pandas()
    df.attrs.update(meta.get("attrs", {}))
    return df
