"""The one-line summary of a run, from its DataFrame's attrs (live runs and replays alike), and its notes."""

from __future__ import annotations

from typing import Any


def summary_line(attrs: dict[str, Any], rows: int | None = None) -> str:
    """`execsnoop: 1,234 events, 0 lost, 10.0 s · this host · containers web, api`."""
    from gadgetbook.errors import GadgetError
    from gadgetbook.kinds import Kind, recorded_kind

    lost = attrs.get("lost") or {}
    lost_total = sum(lost.values()) if isinstance(lost, dict) else int(lost or 0)
    start, end = attrs.get("start"), attrs.get("end")
    duration = f", {end - start:.1f} s" if start and end else ""
    events = attrs.get("events", rows if rows is not None else 0)
    try:
        kind = recorded_kind(attrs)
    except GadgetError:  # a kind this installation does not know: its rows counted plainly
        kind = Kind(None)
    tally = kind.tally(int(events), attrs)
    errors = attrs.get("errors") or {}
    failed = f", failed on {', '.join(f'{k} ({v})' for k, v in errors.items())}" if errors else ""
    return f"{attrs.get('gadget', '?')}: {tally}, {lost_total:,} lost{duration}{where(attrs)}{failed}"


def where(attrs: dict[str, Any]) -> str:
    """` · MODE · TARGETS` (what was traced, and where), leaving out what the other already says."""
    mode, targets = attrs.get("mode") or "", attrs.get("targets") or ""
    parts = [mode] + ([targets] if targets and targets != mode else [])
    return "".join(f" · {p}" for p in parts if p)


def notes(attrs: dict[str, Any]) -> list[str]:
    """Sentences a run adds to its summary: what ended during it, why it saw nothing, where it was saved."""
    return [str(n) for n in attrs.get("notes") or []]
