"""The Investigation: one DataFrame per gadget on one clock, the joined views, a time span to look at, pictures."""

from __future__ import annotations

import functools
import html
import os
from pathlib import Path
from typing import Any

import pandas as pd

from gadgetbook.investigation import joins


class Investigation:
    """Several gadgets' results from one run on the same targets.

    `inv["tcptracer"]` is a gadget's DataFrame with the joined columns: connections get `remote_name` (the
    DNS name their address was resolved from in the same pod), `exe` and `cmdline` (the process behind them);
    opens get `exe` and `cmdline` too. `inv.raw[g]` is the gadget's result as it came. `inv.facts` holds what
    the run knew besides events (targets, the processes found at the start, container addresses, failures).
    """

    def __init__(self, results: dict[str, Any], facts: dict[str, Any]) -> None:
        self.raw = dict(results)
        self.facts = dict(facts)
        self.span: tuple[pd.Timestamp, pd.Timestamp] | None = None  # set by the timeline's brush

    @classmethod
    def from_recordings(cls, recordings: list[Any], facts: dict[str, Any] | None = None) -> Investigation:
        """Runs recorded one by one (paths or results) as one Investigation: one sentence when two are of the
        same gadget, or traced different targets (the joins would then mix workloads that were not watched
        together)."""
        from gadgetbook.errors import GadgetError

        results: dict[str, Any] = {}
        for rec in recordings:
            if isinstance(rec, (str, os.PathLike)):
                import gadgetbook

                rec = gadgetbook.replay(str(rec), show=False)
            attrs = getattr(rec, "attrs", {})
            gadget = attrs.get("gadget")
            if not gadget:
                raise GadgetError("Each recording of an investigation must name its gadget (a gadgetbook run's "
                                  "result); this one does not.")
            if gadget in results:
                raise GadgetError(f"Two recordings are of {gadget}; an investigation holds one run per gadget.")
            results[gadget] = rec
        targets = {g: getattr(r, "attrs", {}).get("targets", "") for g, r in results.items()}
        if len(set(targets.values())) > 1:
            seen = "; ".join(f"{g}: {t or 'this host'}" for g, t in targets.items())
            raise GadgetError(f"The recordings traced different targets ({seen}); investigate them together, or "
                              "record each gadget on the same targets.")
        base = {"gadgets": list(results), "targets": next(iter(targets.values()), "")}
        return cls(results, base | (facts or {}))

    # -- the data --

    @property
    def gadgets(self) -> list[str]:
        return list(self.raw)

    @property
    def failed(self) -> dict[str, str]:
        """Gadgets that did not start, or failed on some node during the run, and why."""
        out = dict(self.facts.get("failed") or {})
        for g, df in self.frames_raw.items():
            for node, err in (df.attrs.get("errors") or {}).items():
                out.setdefault(g, f"{node}: {err}")
        return out

    @property
    def frames_raw(self) -> dict[str, pd.DataFrame]:
        return {g: r if isinstance(r, pd.DataFrame) else r.samples for g, r in self.raw.items()}

    @functools.cached_property
    def processes(self) -> pd.DataFrame:
        """Every process known to the investigation: execs seen, and those found at the start."""
        return joins.process_table(self.frames_raw.get("execsnoop"), self.facts.get("processes"))

    @functools.cached_property
    def frames(self) -> dict[str, pd.DataFrame]:
        """Each gadget's DataFrame with the joined columns."""
        out = {}
        dns = self.frames_raw.get("dns")
        for g, df in self.frames_raw.items():
            if "pid" in df and "timestamp" in df and g != "execsnoop":
                df = joins.with_process(df, self.processes)
            if "daddr" in df and g != "dns":
                df = joins.with_remote_name(df, dns)
                if self.facts.get("inventory") is not None and "inventory" not in df.attrs:
                    df.attrs["inventory"] = self.facts["inventory"]  # peers named by the advisor, graphs, diffs
            out[g] = df
        return out

    def __getitem__(self, gadget: str) -> pd.DataFrame:
        if gadget not in self.raw:
            from gadgetbook.errors import GadgetError

            raise GadgetError(f"This investigation has no {gadget}; it ran {', '.join(self.gadgets)}.")
        return self.selected()[gadget] if self.span else self.frames[gadget]

    def __contains__(self, gadget: str) -> bool:
        return gadget in self.raw

    def __iter__(self):
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    # -- a span of time --

    def between(self, start, end) -> dict[str, pd.DataFrame]:
        """Each gadget's rows in [start, end)."""
        t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
        return {g: df[(df["timestamp"] >= t0) & (df["timestamp"] < t1)] if "timestamp" in df else df
                for g, df in self.frames.items()}

    def selected(self) -> dict[str, pd.DataFrame]:
        """Each gadget's rows in the span brushed on the timeline (all rows when none is)."""
        return self.between(*self.span) if self.span else dict(self.frames)

    @property
    def time_range(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        stamps = [df["timestamp"] for df in self.frames_raw.values() if "timestamp" in df and len(df)]
        if not stamps:
            return None
        return min(s.min() for s in stamps), max(s.max() for s in stamps)

    # -- words --

    def summary(self) -> str:
        from gadgetbook.views.summary import summary_line

        lines = [f"investigation of {self.facts.get('targets') or 'this host'}: {', '.join(self.gadgets)}"]
        for df in self.frames_raw.values():
            lines.append("  " + summary_line(df.attrs, len(df)))
        for g, why in (self.facts.get("failed") or {}).items():
            lines.append(f"  {g}: did not start: {why}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Investigation\n{self.summary()}>"

    # -- pictures --

    def timeline(self, **kwargs: Any):
        """The interactive timeline: a lane per pod or container, every gadget's events as marks; brushing a
        span filters the tables shown with it and sets `self.span`."""
        from gadgetbook.views.timeline import InvestigationView

        return InvestigationView(self, **kwargs)

    def timeline_image(self, path: str | os.PathLike | None = None, width: int = 1200):
        """A static PNG of the timeline (matplotlib) that stays in the saved notebook."""
        from gadgetbook.views.timeline_image import render_png

        return render_png(self, path=path, width=width)

    def show(self) -> None:
        """Display the timeline with its tables, and the static image for the saved notebook."""
        from IPython.display import HTML, display

        display(HTML(f'<pre class="gadgetbook-summary">{html.escape(self.summary())}</pre>'))
        if self.time_range is not None:
            display(self.timeline())
            display(self.timeline_image())

    # -- keeping and comparing --

    def save(self, path: str | os.PathLike) -> Path:
        """A folder that `gadgetbook.replay` turns back into this Investigation."""
        from gadgetbook.investigation.store import save

        return save(self, path)

    def diff(self, before: Investigation):
        """What is new or gone per workload since `before`; see `gadgetbook.diff`."""
        from gadgetbook.compare.diff import diff

        return diff(before, self)

    def check_network_policy(self, policies):
        """The connections the given NetworkPolicies would have refused."""
        from gadgetbook.policy.network import check_network_policy

        if "tcptracer" not in self.raw:
            from gadgetbook.errors import GadgetError

            raise GadgetError("Checking a network policy needs connections: investigate with tcptracer.")
        return check_network_policy(policies, self.frames["tcptracer"], inventory=self.facts.get("inventory"))
