"""The result of a profile run: sampled stacks as a DataFrame, folded and speedscope exports, flame
graphs (interactive and static) and the comparison of two profiles."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gadgetbook.views.flametree import CONTAINER, KERNEL, PROCESS, USER, FlameTree

HOST = "(host)"


def _frames(text: str) -> list[str]:
    return text.split(";") if text else []


GROUP = ("node", "namespace", "pod", "container", "pid", "comm", "user_stack", "kernel_stack")
STACK_COLUMNS = ("user_stack", "kernel_stack", "user_addresses", "kernel_addresses", "user_locations")


class Profile:
    """Sampled on-CPU stacks. `.frame` has one row per sample (its time, thread and stack); `.samples` one
    row per process and distinct named stack, with `count`; `.timeline` each sample's time and row of
    `.samples`."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.samples, self.timeline = _aggregate(frame)

    # -- facts --

    @property
    def attrs(self) -> dict[str, Any]:
        return self.frame.attrs

    @property
    def warnings(self) -> list[str]:
        """One sentence per process whose stacks could not be read in full (also marked in the stacks)."""
        return list(self.attrs.get("warnings") or [])

    @property
    def total(self) -> int:
        return int(self.samples["count"].sum()) if len(self.samples) else 0

    @property
    def seconds(self) -> float:
        return float(self.attrs.get("seconds") or 0.0)

    def summary(self) -> str:
        """One sentence about the run: samples and processes, or that the targets never ran."""
        a = self.attrs
        where = f" of {a['targets']}" if a.get("targets") else ""
        rate = f" at {a['params']['frequency']} Hz" if isinstance(a.get("params"), dict) and "frequency" in a[
            "params"] else ""
        if not self.total:
            return (f"profile: no samples in {self.seconds:.1f} s of sampling{where}{rate}; "
                    "the targets did not run on a CPU in that time (idle or blocked).")
        lost = a.get("lost") or {}
        lost_total = sum(lost.values()) if isinstance(lost, dict) else int(lost or 0)
        warned = f", {len(self.warnings):,} warnings" if self.warnings else ""
        return (f"profile: {self.total:,} samples in {self.seconds:.1f} s{rate}{where}, "
                f"{self.samples['pid'].nunique():,} processes, {len(self.samples):,} distinct stacks, "
                f"{lost_total:,} lost{warned}")

    def __repr__(self) -> str:
        return f"<Profile {self.summary()}>"

    def __len__(self) -> int:
        return len(self.samples)

    # -- stacks --

    def stacks(self, process: bool = True, container: bool = False) -> pd.DataFrame:
        """Full stacks ('a;b;c', outermost first) merged across rows, with their counts."""
        df = self.samples
        parts = []
        if container:
            parts.append(_container_names(df))
        if process:
            parts.append(df["comm"].astype(str))
        parts += [df["user_stack"].astype(str), df["kernel_stack"].astype(str)]
        joined = [";".join(p for p in row if p) for row in zip(*(s.tolist() for s in parts))]
        out = pd.DataFrame({"stack": joined, "count": df["count"].to_numpy()})
        return out.groupby("stack", sort=True, as_index=False)["count"].sum()

    def folded(self, process: bool = True) -> str:
        """Brendan Gregg's folded format: one 'outer;...;inner count' line per distinct stack."""
        st = self.stacks(process=process)
        return "".join(f"{s} {c}\n" for s, c in zip(st["stack"].tolist(), st["count"].tolist()))

    def to_folded(self, path: str | os.PathLike, process: bool = True) -> Path:
        path = Path(path)
        path.write_text(self.folded(process))
        return path

    def to_speedscope(self, path: str | os.PathLike, process: bool = True) -> Path:
        """A speedscope file (https://www.speedscope.app): one sampled profile, weights in samples."""
        st = self.stacks(process=process)
        index: dict[str, int] = {}
        samples = [[index.setdefault(f, len(index)) for f in _frames(s)] for s in st["stack"].tolist()]
        doc = {
            "$schema": "https://www.speedscope.app/file-format-schema.json",
            "exporter": "gadgetbook",
            "name": f"profile of {self.attrs.get('targets') or 'this host'}",
            "activeProfileIndex": 0,
            "shared": {"frames": [{"name": f} for f in index]},
            "profiles": [{
                "type": "sampled", "name": "on-CPU samples", "unit": "none",
                "startValue": 0, "endValue": self.total,
                "samples": samples, "weights": st["count"].astype(int).tolist(),
            }],
        }
        path = Path(path)
        path.write_text(json.dumps(doc, separators=(",", ":")))
        return path

    def write_requested(self) -> None:
        """Write the files the run's params asked for (--folded FILE, --speedscope FILE)."""
        params = self.attrs.get("params") or {}
        if params.get("folded"):
            self.to_folded(params["folded"])
        if params.get("speedscope"):
            self.to_speedscope(params["speedscope"])

    def tree(self, process: bool = True, container: bool | None = None) -> FlameTree:
        """The stacks merged into a flame-graph tree (frames know whether they are kernel or user), one
        root per container or pod when several were profiled (`container=None` decides by that), runs of
        unnamed frames folded into one."""
        df = self.samples
        cnames = _container_names(df)
        codes, uniques = pd.factorize(cnames)
        if container is None:
            container = len(uniques) > 1
        segments, kinds = [], []
        if container:
            segments.append(cnames.tolist())
            kinds.append(CONTAINER)
        if process:
            segments.append(df["comm"].astype(str).tolist())
            kinds.append(PROCESS)
        segments += [_fold_unknown(df["user_stack"].astype(str).tolist()), df["kernel_stack"].astype(str).tolist()]
        kinds += [USER, KERNEL]
        return FlameTree.from_segments(segments, kinds, df["count"].to_numpy(), container_codes=codes,
                                       containers=np.asarray(uniques, dtype=object))

    # -- pictures --

    def flamegraph(self, color_by: str = "kind", fallback: bool = True, **kwargs: Any):
        """The interactive flame graph widget: flame graph, icicle, sandwich and function table, a time
        strip to pick a span, search and zoom. With `fallback`, its display carries a static PNG copy
        for where widgets do not render (a notebook on GitHub, nbconvert)."""
        from gadgetbook.views.flamegraph import FlameGraph

        tree = self.tree()
        tl = self.timeline
        times = None
        if len(tl):
            stamps = tl["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)
            times = (stamps - stamps.min()) / 1e9
        widget = FlameGraph(tree, color_by=color_by, title=self.summary(), notes=self.warnings, times=times,
                            rows=tl["row"].to_numpy() if len(tl) else None,
                            weights=tl["count"].to_numpy() if len(tl) else None, **kwargs)
        if fallback:
            from gadgetbook.views.flameimage import render_png

            widget.fallback = render_png(tree, color_by=color_by, title=self.summary())
        return widget

    def flamegraph_image(self, path: str | os.PathLike | None = None, width: int = 1200, color_by: str = "kind"):
        """A static PNG flame graph (matplotlib) that stays in the saved notebook."""
        from gadgetbook.views.flameimage import render_png

        return render_png(self.tree(), path=path, width=width, color_by=color_by, title=self.summary())

    def diff(self, other: Profile) -> ProfileDiff:
        """What changed from `other` (before) to this profile (after)."""
        return ProfileDiff(before=other, after=self)

    def show(self) -> None:
        """Display the interactive flame graph once (its title is the summary, and its display carries the
        static image that saved notebooks show where widgets do not render)."""
        from IPython.display import display

        display(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        """In a notebook, the flame graph (with its PNG copy); elsewhere, or without samples, the summary."""
        text = {"text/plain": repr(self)}
        if not self.total or not _in_kernel():
            if self.total:
                return text
            import html

            return text | {"text/html": f'<div class="gadgetbook-summary"><b>{html.escape(self.summary())}</b>'
                                        + "".join(f"<div>{html.escape(w)}</div>" for w in self.warnings)
                                        + "</div>"}
        data, meta = self.flamegraph()._repr_mimebundle_(include=include, exclude=exclude)
        return {**data, **text}, meta


class ProfileDiff:
    """A differential view: the after profile's tree, each frame colored by how its share of samples
    changed since before (red grew, blue shrank)."""

    def __init__(self, before: Profile, after: Profile) -> None:
        self.before = before
        self.after = after

    @property
    def frame(self) -> pd.DataFrame:
        """Per stack: samples before and after, shares, and the change of share (after - before)."""
        b = self.before.stacks().set_index("stack")["count"].rename("before")
        a = self.after.stacks().set_index("stack")["count"].rename("after")
        df = pd.concat([b, a], axis=1).fillna(0).astype(np.int64)
        df["before_share"] = df["before"] / max(int(df["before"].sum()), 1)
        df["after_share"] = df["after"] / max(int(df["after"].sum()), 1)
        df["delta"] = df["after_share"] - df["before_share"]
        return df.sort_values("delta", ascending=False)

    def tree(self) -> FlameTree:
        # Both with container roots, or neither: paths must mean the same place in both graphs.
        several = any(_container_names(p.samples).nunique() > 1 for p in (self.before, self.after))
        after = self.after.tree(container=several)
        before = self.before.tree(container=several)
        delta = np.zeros(len(after.frame))
        share_after = after.value / max(after.total, 1)
        # Match nodes by path: the same frames from the root are the same place in both graphs.
        paths_before = {before.path(i): i for i in range(len(before.frame))}
        for i in range(len(after.frame)):
            j = paths_before.get(after.path(i))
            share_before = before.value[j] / max(before.total, 1) if j is not None else 0.0
            delta[i] = share_after[i] - share_before
        after.delta = delta
        return after

    def summary(self) -> str:
        return (f"profile diff: {self.before.total:,} samples before, {self.after.total:,} after; "
                "red grew, blue shrank (share of samples)")

    def flamegraph(self, **kwargs: Any):
        from gadgetbook.views.flamegraph import FlameGraph

        return FlameGraph(self.tree(), color_by="diff", title=self.summary(), **kwargs)

    def flamegraph_image(self, path: str | os.PathLike | None = None, width: int = 1200):
        from gadgetbook.views.flameimage import render_png

        return render_png(self.tree(), path=path, width=width, color_by="diff", title=self.summary())


def _in_kernel() -> bool:
    """True inside a Jupyter kernel, where widgets can be displayed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _fold_unknown(stacks: list[str]) -> list[str]:
    """Runs of unnamed frames as one: a column of [unknown] says no more than a single one."""
    import re

    run = re.compile(r"\[unknown\](?:;\[unknown\])+")
    twice = "[unknown];[unknown]"
    return [run.sub("[unknown]", s) if twice in s else s for s in stacks]


def _container_names(df: pd.DataFrame) -> pd.Series:
    if "container" not in df or not len(df):
        return pd.Series([HOST] * len(df), dtype=object)
    names = df["container"].astype(object).where(df["container"].astype(str) != "", HOST)
    if "pod" in df:
        pods = df["pod"].astype(str)
        names = names.where(pods == "", pods + "/" + names.astype(str))
    return names.fillna(HOST).astype(str).reset_index(drop=True)


def _aggregate(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per process and named stack with its count, each sample's time and row) from per-sample
    rows; a recording made before samples kept their time is already the first."""
    empty_timeline = pd.DataFrame({"timestamp": pd.Series([], dtype="datetime64[ns]"),
                                   "tid": pd.Series([], dtype=np.uint32), "row": pd.Series([], dtype=np.int64),
                                   "count": pd.Series([], dtype=np.int64)})
    if "timestamp" not in frame.columns:
        return frame, empty_timeline
    from gadgetbook.frames.coded import factorize_rows

    keys = [c for c in GROUP if c in frame.columns]
    if not len(frame):
        samples = frame.drop(columns=["timestamp", "tid"], errors="ignore").reset_index(drop=True)
        return _plain_stacks(samples), empty_timeline
    fields = [_codes(frame[c]) for c in keys]
    codes, first = factorize_rows(*fields)
    counts = np.bincount(codes, weights=frame["count"].to_numpy(dtype=np.float64), minlength=len(first))
    # Most samples first; rows of a stack keep the addresses of its first sample.
    order = np.argsort(-counts, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    samples = frame.iloc[first[order]].drop(columns=["timestamp", "tid"]).reset_index(drop=True)
    samples["count"] = np.rint(counts[order]).astype(np.int64)
    samples.attrs = frame.attrs
    timeline = pd.DataFrame({"timestamp": frame["timestamp"].to_numpy(), "tid": frame["tid"].to_numpy(),
                             "row": rank[codes], "count": frame["count"].to_numpy()})
    return _plain_stacks(samples), timeline


def _codes(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy().astype(np.int64)
    if column.dtype.kind in "iuf":
        return column.to_numpy()
    return pd.factorize(column)[0].astype(np.int64)


def _plain_stacks(samples: pd.DataFrame) -> pd.DataFrame:
    """Stack columns as strings: one row per distinct stack, so categories would only add a layer."""
    for c in STACK_COLUMNS:
        if c in samples.columns and isinstance(samples[c].dtype, pd.CategoricalDtype):
            # Each category made a string once, then taken by code: astype(str) makes every row's anew
            # (0.8 s for 100,000 stacks).
            values = samples[c].array
            categories = values.categories.array if values.categories.dtype == "str" else \
                pd.array(np.asarray(values.categories, dtype=object).astype(str), dtype="str")
            samples[c] = pd.Series(categories.take(values.codes, allow_fill=True), index=samples.index)
    return samples
