"""Recordings: a run's events and facts in one Parquet file, and their replay without a kernel or root."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
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
    try:
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(path)  # a reader never sees half a recording
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_destination(path: str | os.PathLike, folder: bool = False) -> Path:
    """A GadgetError in one sentence, before a run starts, when a recording could not be written at `path`
    (a file, or with `folder` a folder that a dataset is streamed into)."""
    path = Path(path)
    if not folder and path.is_dir():
        raise GadgetError(f"Cannot save to {path}: it is a directory; give a file name such as {path / 'run.parquet'}.")
    # The nearest folder that exists must take a new file (the missing ones are made when the run is saved).
    place = path if folder and path.is_dir() else path.parent
    while not place.exists():
        place = place.parent
    try:
        if not place.is_dir():
            raise NotADirectoryError(20, "not a directory")
        fd, probe = tempfile.mkstemp(dir=place, prefix=f".{path.name}.", suffix=".check")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise GadgetError(f"Cannot save to {path}: {place} does not take new files ({exc.strerror or exc}); "
                          "choose a writable place for --save.") from None
    return path


def save_keeping(df: pd.DataFrame, path: str | os.PathLike,
                 before_write: Callable[[Path], None] | None = None) -> tuple[Path | None, str | None]:
    """Save where asked; when that fails, next to it or in the temporary folder, so the events are kept.

    `before_write(place)` runs before each attempt (to note in the frame where it goes). Returns (where it
    was written or None, one sentence saying what happened when not where asked).
    """
    path = Path(path)

    def attempt(place: Path) -> Path:
        if before_write is not None:
            before_write(place)
        return save(df, place)

    try:
        return attempt(path), None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    elsewhere = [path.with_name(f"{path.stem}-{stamp}{path.suffix}"),
                 Path(tempfile.gettempdir()) / f"{path.stem}-{stamp}{path.suffix}"]
    for other in elsewhere:
        try:
            written = attempt(other)
        except (OSError, ValueError):
            continue
        return written, f"Could not save to {path} ({reason}); the recording was saved to {written} instead."
    return None, f"Could not save to {path} ({reason}) nor in {elsewhere[-1].parent}; the events were not recorded."


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
