"""`diff(before, after)`: per workload, the executables, files, peers, DNS names, ... that are new or gone.

What counts as a workload's behaviour is declared by each gadget in its gadget.toml (`[[behaviour]]`: what it
is called, the columns that identify one item, and which rows count), and travels with every recording in
its attrs, so a diff works on whatever gadgets a recording has, including ones this installation lacks.
Declarations may name two columns made here from others: `exe` (the program a process runs) and `peer`
(the other end of a connection by name). Pids, pod-name suffixes and ephemeral ports never enter it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from gadgetbook.compare.workloads import peers, workloads
from gadgetbook.errors import GadgetError

COLUMNS = ["workload", "what", "item", "change", "before", "after"]


@dataclass
class Diff:
    """The changes as a DataFrame (one row per workload, kind of behaviour and item), and in a few lines."""

    frame: pd.DataFrame
    notes: list[str]

    def summary(self, max_items: int = 6) -> str:
        if not len(self.frame):
            return "\n".join(["no change: every workload did what it did before", *self.notes])
        lines = []
        for workload, rows in self.frame.groupby("workload", sort=True):
            parts = []
            for (change, what), items in rows.groupby(["change", "what"], sort=False):
                shown = items["item"].tolist()
                more = f" and {len(shown) - max_items} more" if len(shown) > max_items else ""
                parts.append(f"{change} {what}: {', '.join(shown[:max_items])}{more}")
            lines.append(f"{workload}: " + "; ".join(parts))
        return "\n".join(lines + self.notes)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        import html

        return (f'<pre class="gadgetbook-summary">{html.escape(self.summary())}</pre>'
                + self.frame.to_html(index=False, max_rows=50, border=0, classes="gadgetbook-table"))


def _as_recordings(x: Any) -> tuple[dict[str, pd.DataFrame], list[dict] | None]:
    """gadget -> DataFrame (joined where an investigation joins), and the container inventory if known."""
    from gadgetbook.investigation.result import Investigation

    if isinstance(x, str) or hasattr(x, "__fspath__"):
        import gadgetbook

        x = gadgetbook.replay(str(x), show=False)
    if isinstance(x, Investigation):
        return dict(x.frames), x.facts.get("inventory")
    df = getattr(x, "samples", x)
    if not isinstance(df, pd.DataFrame):
        raise GadgetError(f"diff compares recordings, DataFrames of a run or Investigations, not {type(x).__name__}.")
    gadget = df.attrs.get("gadget")
    if not gadget:
        raise GadgetError("diff needs recordings made by gadgetbook (their attrs name the gadget); this DataFrame "
                          "has none.")
    return {gadget: df}, df.attrs.get("inventory")


def _declared(gadget: str, df: pd.DataFrame) -> list[dict[str, Any]]:
    declared = df.attrs.get("behaviour")
    if not declared:
        from gadgetbook import catalog

        try:
            declared = list(catalog.get(gadget).behaviour)
        except GadgetError:
            declared = []
    return declared


def _with_derived(df: pd.DataFrame, inventory: list[dict] | None) -> pd.DataFrame:
    from gadgetbook.investigation.joins import executable

    extra = {}
    if "exe" not in df and {"path", "args"} <= set(df.columns):
        extra["exe"] = executable(df["path"], df["args"])
    if "peer" not in df and "daddr" in df:
        extra["peer"] = peers(df, inventory)
    return df.assign(**extra) if extra else df


def items(df: pd.DataFrame, declared: list[dict[str, Any]], inventory: list[dict] | None) -> pd.DataFrame:
    """(workload, what, item) with the number of rows behind each: a recording's behaviour."""
    df = _with_derived(df, inventory)
    out = []
    for d in declared:
        cols = list(d["columns"])
        missing = [c for c in cols if c not in df]
        if missing:
            continue  # an older recording without that column: nothing to say about it
        rows = df.query(d["where"]) if d.get("where") else df
        if not len(rows):
            continue
        item = rows[cols[0]].astype(str)
        for c in cols[1:]:
            item = item + ":" + rows[c].astype(str)
        out.append(pd.DataFrame({"workload": workloads(rows), "what": d["what"], "item": item}))
    if not out:
        return pd.DataFrame({"workload": [], "what": [], "item": [], "count": []})
    all_items = pd.concat(out, ignore_index=True)
    return all_items.groupby(["workload", "what", "item"], sort=True).size().rename("count").reset_index()


def _all_workloads(frames: dict[str, pd.DataFrame]) -> set[str]:
    return {w for df in frames.values() if len(df) for w in set(workloads(df))}


def diff(before: Any, after: Any) -> Diff:
    """What is new or gone per workload from `before` to `after` (recordings: paths, DataFrames of a run, or
    Investigations). One sentence for recordings of different gadgets or versions."""
    b, b_inv = _as_recordings(before)
    a, a_inv = _as_recordings(after)
    common = [g for g in a if g in b]
    if not common:
        raise GadgetError(f"The recordings are of different gadgets ({', '.join(b)} before, {', '.join(a)} after); "
                          "compare recordings of the same gadgets.")
    notes = [f"{g}: only in the {'after' if g in a else 'before'} recording, not compared"
             for g in sorted(set(a) ^ set(b))]
    for g in common:
        vb, va = b[g].attrs.get("version"), a[g].attrs.get("version")
        if vb and va and vb != va:
            raise GadgetError(f"The {g} recordings were made by different gadgetbook versions ({vb} and {va}); "
                              "record both with one version to compare them.")
    per_gadget = []
    for g in common:
        declared = _declared(g, a[g]) or _declared(g, b[g])
        if not declared:
            notes.append(f"{g}: declares no behaviour to compare, not compared")
            continue
        ib = items(b[g], declared, b_inv or a_inv).rename(columns={"count": "before"})
        ia = items(a[g], declared, a_inv or b_inv).rename(columns={"count": "after"})
        per_gadget.append((ib, ia))
    # A workload traced in only one of the recordings did not change: it was not there to see in the other.
    # Seen by any gadget counts: a workload that made its first DNS query after did change.
    seen_b = {w for ib, _ in per_gadget for w in ib["workload"]} | _all_workloads(b)
    seen_a = {w for _, ia in per_gadget for w in ia["workload"]} | _all_workloads(a)
    notes += [f"{w}: seen only {'after' if w in seen_a else 'before'}, not compared"
              for w in sorted(seen_a ^ seen_b)]
    parts = []
    for ib, ia in per_gadget:
        both = ib.merge(ia, on=["workload", "what", "item"], how="outer")
        both[["before", "after"]] = both[["before", "after"]].fillna(0).astype(int)
        both = both[both["workload"].isin(seen_a & seen_b)]
        both["change"] = None
        both.loc[(both["before"] == 0) & (both["after"] > 0), "change"] = "new"
        both.loc[(both["before"] > 0) & (both["after"] == 0), "change"] = "gone"
        parts.append(both.dropna(subset=["change"]))
    frame = pd.concat(parts, ignore_index=True)[COLUMNS] if parts else pd.DataFrame(columns=COLUMNS)
    frame = frame.sort_values(["workload", "change", "what", "item"], ignore_index=True)
    return Diff(frame, notes)
