"""The one-line summary of a run, from its DataFrame's attrs (live runs and replays alike)."""

from __future__ import annotations

from typing import Any


def summary_line(attrs: dict[str, Any], rows: int | None = None) -> str:
    lost = attrs.get("lost") or {}
    lost_total = sum(lost.values()) if isinstance(lost, dict) else int(lost or 0)
    start, end = attrs.get("start"), attrs.get("end")
    duration = f", {end - start:.1f}s" if start and end else ""
    events = attrs.get("events", rows if rows is not None else 0)
    targets = f", {attrs['targets']}" if attrs.get("targets") else ""
    errors = attrs.get("errors") or {}
    failed = f", failed on {', '.join(f'{k} ({v})' for k, v in errors.items())}" if errors else ""
    return f"{attrs.get('gadget', '?')}: {events:,} events, {lost_total:,} lost{duration}{targets}{failed}"
