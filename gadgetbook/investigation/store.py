"""An investigation kept as one folder: `_investigation.json` (the facts) and per gadget a Parquet dataset
folder (streamed while it ran) or a Parquet file (saved at the end); `gadgetbook.replay(folder)` reads it whole
or filtered."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gadgetbook.errors import GadgetError
from gadgetbook.investigation.start import MANIFEST

FORMAT_VERSION = 1


def is_investigation(path: str | os.PathLike) -> bool:
    return (Path(path) / MANIFEST).is_file()


def check_folder(path: str | os.PathLike) -> None:
    p = Path(path)
    if str(p).endswith(".parquet"):
        raise GadgetError(f"An investigation is saved to a folder, one part per gadget; --save {p.with_suffix('')}.")
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise GadgetError(f"{p} exists and is not an empty folder; save the investigation to a new folder.")


def _write_manifest(path: Path, facts: dict[str, Any], parts: dict[str, str]) -> None:
    from gadgetbook.frames.facts import write_facts
    from gadgetbook.run_handle import gadgetbook_version

    path.mkdir(parents=True, exist_ok=True)
    write_facts(path / MANIFEST, {"version": FORMAT_VERSION, "gadgetbook": gadgetbook_version(), "facts": facts,
                                  "parts": parts})


def stream_runs(live, path: str | os.PathLike, tail_rows: int | None = None) -> None:
    """Every gadget of a live investigation streams to its own dataset under `path` (one that has no
    timestamps is written as one file at the end)."""
    from gadgetbook.api import DEFAULT_TAIL_ROWS
    from gadgetbook.frames.dataset import DatasetWriter

    path = Path(path)
    parts = {}
    for g, run in live.runs.items():
        if "timestamp" in run.columns:
            run.stream_to(DatasetWriter(path / g, run.columns, run.attrs()), tail_rows=tail_rows or DEFAULT_TAIL_ROWS)
            parts[g] = g
        else:
            run.save_path = str(path / f"{g}.parquet")
            parts[g] = f"{g}.parquet"
    live.parts = parts
    _write_manifest(path, live.facts, parts)


def finish_saved(inv, path: str | os.PathLike) -> None:
    path = Path(path)
    parts = {g: g if (path / g).is_dir() else f"{g}.parquet" for g in inv.gadgets}
    _write_manifest(path, inv.facts, parts)


def save(inv, path: str | os.PathLike) -> Path:
    """Each gadget's result as one Parquet file, and the facts."""
    from gadgetbook.frames.recording import save as save_frame

    check_folder(path)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for g, df in inv.frames_raw.items():
        save_frame(df, path / f"{g}.parquet")
    _write_manifest(path, inv.facts, {g: f"{g}.parquet" for g in inv.gadgets})
    return path


def load(path: str | os.PathLike, **filters: Any):
    """The Investigation a folder holds; `filters` (columns, start, end, pods, containers, nodes) apply to every
    gadget, read without loading what they exclude where the gadget was streamed as a dataset."""
    from gadgetbook.frames.facts import read_facts
    from gadgetbook.investigation.result import Investigation

    path = Path(path)
    doc = read_facts(path / MANIFEST, FORMAT_VERSION, "a saved investigation")
    results = {}
    for g, part in doc.get("parts", {}).items():
        where = path / part
        if not where.exists():
            continue  # a gadget that saw nothing to write
        results[g] = read_part(where, **filters)
    facts = doc.get("facts", {})
    facts.setdefault("gadgetbook", doc.get("gadgetbook"))
    return Investigation(results, facts)


def read_part(where: Path, **filters: Any):
    """One recording, a dataset folder or a file, with the filters applied."""
    from gadgetbook.frames.dataset import is_dataset, read_dataset

    if is_dataset(where):
        from gadgetbook.kinds import recorded_kind

        df = read_dataset(where, **filters)
        return recorded_kind(df.attrs).result(df)
    from gadgetbook.frames.recording import load as load_frame
    from gadgetbook.kinds import recorded_kind

    df = filter_frame(load_frame(where), **filters)
    return recorded_kind(df.attrs).result(df)


def filter_frame(df, *, columns=None, start=None, end=None, pods=None, containers=None, nodes=None):
    """The same filters as a dataset's, on a DataFrame in memory (a recording saved as one file)."""
    import pandas as pd

    keep = pd.Series(True, index=df.index)
    if "timestamp" in df:
        if start is not None:
            keep &= df["timestamp"] >= pd.Timestamp(start)
        if end is not None:
            keep &= df["timestamp"] < pd.Timestamp(end)
    for col, values in (("pod", pods), ("container", containers), ("node", nodes)):
        if values is not None and col in df:
            keep &= df[col].astype(str).isin([values] if isinstance(values, str) else list(values))
    out = df[keep] if not keep.all() else df
    if columns is not None:
        missing = [c for c in columns if c not in df]
        if missing:
            raise GadgetError(f"The recording has no column {', '.join(missing)}; "
                              f"its columns: {', '.join(df.columns)}.")
        out = out[list(columns)]
    out = out.reset_index(drop=True)
    out.attrs.update(df.attrs)
    return out
