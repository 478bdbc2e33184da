"""A recording's facts file (JSON beside its Parquet parts): written whole or not at all, read with a check
of the format version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gadgetbook.errors import GadgetError


def write_facts(path: Path, doc: dict[str, Any]) -> None:
    """Write `doc` to `path` atomically (a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, default=str))
    tmp.replace(path)


def read_facts(path: Path, version: int, what: str) -> dict[str, Any]:
    """The facts at `path`; one sentence when there are none or a newer gadgetbook wrote them."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GadgetError(f"{path.parent} is not {what} ({exc}).") from None
    if doc.get("version", 0) > version:
        raise GadgetError(f"{path.parent} was recorded by a newer gadgetbook; upgrade to replay it.")
    return doc
