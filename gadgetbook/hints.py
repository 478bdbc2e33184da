"""Sentences that tell a user what happened and what to try: nothing matched, nothing was seen, a mistyped name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def closest(word: str, choices: Iterable[str]) -> list[str]:
    """The one or two choices closest to a mistyped word (none when nothing is close); a second one only when
    it is about as close as the first."""
    choices = list(choices)
    ranked = [(difflib.SequenceMatcher(None, word, c).ratio(), c) for c in choices]
    ranked = sorted((r for r in ranked if r[0] >= 0.7), key=lambda r: -r[0])[:2]
    if len(ranked) == 2 and ranked[1][0] < ranked[0][0] - 0.05:
        ranked = ranked[:1]
    return [c for _, c in ranked]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` Did you mean X?` for the closest choices, or "" when none is close."""
    close = closest(word, choices)
    return " Did you mean " + " or ".join(close) + "?" if close else ""


def no_pods(query: str) -> str:
    """Nothing in the cluster matches: name the flags that widen or leave the cluster."""
    return (f"No running pod matches {query} in the cluster; nothing was traced. Try -A for every namespace "
            "(gadgetbook's own node pods are always left out), -n NAMESPACE for another one, or --local to trace "
            "this host instead.")


def _target_words(targets: str) -> str:
    if targets.startswith("pid "):
        return f"process {targets[4:]}"
    return targets or "the targets"


def empty_result(attrs: dict[str, Any], gadget_hint: str = "", defaults: dict[str, Any] | None = None) -> list[str]:
    """Why a run may have seen nothing, and what to try: the targets, the gadget's own reason, its filters."""
    gadget = attrs.get("gadget", "the gadget")
    start, end = attrs.get("start"), attrs.get("end")
    seconds = f" in {end - start:.1f} s" if start and end else ""
    targets = _target_words(str(attrs.get("targets") or ""))
    out = [f"Nothing was seen{seconds}: {targets} did nothing that {gadget} traces while it ran."]
    if gadget_hint:
        out.append(gadget_hint)
    params, defaults = attrs.get("params") or {}, defaults or {}
    narrowed = [name for name, value in params.items()
                if value is True and defaults.get(name) is not True]
    if narrowed:
        flags = ", ".join("--" + n.replace("_", "-") for n in narrowed)
        out.append(f"{flags} keep{'s' if len(narrowed) == 1 else ''} only some events; run without "
                   f"{'it' if len(narrowed) == 1 else 'them'} to see the rest.")
    if attrs.get("errors"):
        out.append("Some sources failed (see the summary); their events are missing.")
    out.append("Try a longer --timeout, or make the activity happen while the gadget runs.")
    return out


def saved(path: str, rows: int) -> str:
    return f"Saved {rows:,} rows to {path}; gadgetbook.replay({path!r}) reads them back."
