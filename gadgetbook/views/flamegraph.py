"""The interactive flame graph: an anywidget whose canvas renderer lives in flamegraph.js.

The tree stays in Python; the page gets only the frames wide enough to see for the current view (a few
thousand at most, packed in one binary buffer), so 100,000 distinct stacks never reach the browser as
100,000 DOM nodes. Views: flame graph (roots at the bottom), icicle (roots on top), sandwich (the
callers and callees of one function) and a table of functions by self and total samples; a time strip
of samples per second selects a span of the run, for which everything is recounted. Every control is a
synced trait, so it works (and can be tested) from Python as well as by clicking and typing.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import numpy as np
import traitlets as t

from gadgetbook.views.flamecolors import CONTAINER_HUES, node_colors, to_css
from gadgetbook.views.flametree import CONTAINER, KIND_NAMES, PROCESS, FlameTree

# One record per drawn frame (little-endian), read in flamegraph.js with a DataView.
NODE_DTYPE = np.dtype([("x", "<f8"), ("value", "<f8"), ("id", "<u4"), ("name", "<u4"), ("depth", "<u2"),
                       ("kind", "u1"), ("flags", "u1"), ("color", "<u4"), ("pad", "<u4")])
ANCESTOR = 1  # flags: drawn only to show where the zoom root sits
CALLERS = 2  # flags: in the sandwich, a caller (drawn above the function, outward going up)
VIEWS = ("flame", "icicle", "sandwich", "table")
STRIP_BUCKETS = 120
TABLE_ROWS = 300


class FlameGraph(anywidget.AnyWidget):
    """Click a frame to zoom into it, Reset to zoom out, type to highlight frames and see their share;
    switch views, pick a function for its sandwich, drag across the time strip to look at a span."""

    _esm = Path(__file__).with_name("flamegraph.js")
    _css = Path(__file__).with_name("flamegraph.css")

    title = t.Unicode("").tag(sync=True)
    notes = t.List(t.Unicode(), help="Warnings shown under the title.").tag(sync=True)
    view = t.Enum(VIEWS, "flame").tag(sync=True)
    zoom = t.Unicode("", help="The zoom root as ';'-joined frames from the root; '' shows everything.").tag(sync=True)
    search = t.Unicode("", help="Frames whose names contain this (case-insensitive) are highlighted.").tag(sync=True)
    search_share = t.Float(0.0, help="Share of the samples in stacks through a matching frame.").tag(sync=True)
    search_samples = t.Float(0.0).tag(sync=True)
    sandwich = t.Unicode("", help="The function whose callers and callees the sandwich view shows.").tag(sync=True)
    color_by = t.Unicode("kind").tag(sync=True)
    total = t.Float(0.0).tag(sync=True)
    zoom_total = t.Float(0.0).tag(sync=True)
    zoom_depth = t.Int(0).tag(sync=True)
    names = t.List(t.Unicode()).tag(sync=True)
    nodes = t.Bytes(b"").tag(sync=True)
    legend = t.List(t.List(t.Unicode())).tag(sync=True)
    height = t.Int(0, help="Canvas height in pixels; 0 fits the deepest stack.").tag(sync=True)
    functions = t.List(t.List(), help="[name, self, total, kind] of the busiest functions.").tag(sync=True)
    strip = t.List(t.Float(), help="Samples per time bucket across the run.").tag(sync=True)
    strip_seconds = t.Float(0.0, help="Width of one time bucket in seconds.").tag(sync=True)
    span = t.List(t.Float(), help="[start, end] seconds into the run to show; [] for all of it.").tag(sync=True)

    def __init__(self, tree: FlameTree, color_by: str = "kind", min_fraction: float = 1 / 2400,
                 times: np.ndarray | None = None, rows: np.ndarray | None = None, weights: np.ndarray | None = None,
                 **kwargs) -> None:
        self.base = tree
        self.tree = tree
        self.min_fraction = min_fraction
        # Each sample's time (seconds into the run) and the stack (row of the tree's input) it counted for.
        self._times = np.asarray(times, dtype=np.float64) if times is not None else np.zeros(0)
        self._rows = np.asarray(rows, dtype=np.int64) if rows is not None else np.zeros(0, np.int64)
        self._weights = (np.asarray(weights, dtype=np.float64) if weights is not None
                         else np.ones(len(self._times)))
        super().__init__(color_by=color_by, total=float(tree.total), **kwargs)
        self.legend = self._legend()
        self.on_msg(self._on_frontend_msg)
        self._strip()
        self._functions()
        self._render()

    # -- what the page asks for --

    def _on_frontend_msg(self, _widget, content, _buffers) -> None:
        if not isinstance(content, dict):
            return
        node = int(content.get("node", 0))
        if content.get("type") == "zoom" and 0 <= node < len(self.tree.frame):
            self.zoom = self.tree.path(node)
        elif content.get("type") == "sandwich" and isinstance(content.get("name"), str):
            self.show_sandwich(content["name"])

    def zoom_to(self, node: int) -> None:
        self.zoom = self.tree.path(node)

    def reset(self) -> None:
        self.zoom = ""
        self.span = []

    def show_sandwich(self, name: str) -> None:
        """The callers and callees of the function `name`."""
        with self.hold_trait_notifications():
            self.sandwich = name
            self.view = "sandwich"

    @t.observe("zoom", "color_by", "view", "sandwich")
    def _changed(self, change) -> None:
        if change["name"] == "color_by":
            self.legend = self._legend()
        self._render()

    @t.observe("span")
    def _spanned(self, _change) -> None:
        span = list(self.span)
        if len(span) == 2 and len(self._times):
            lo, hi = sorted(span)
            inside = (self._times >= lo) & (self._times < hi)
            counts = np.bincount(self._rows[inside], weights=self._weights[inside], minlength=len(self.base.lengths))
            self.tree = self.base.recounted(counts)
        else:
            self.tree = self.base
        self.total = float(self.tree.total)
        self._functions()
        self._searched({"new": self.search})
        self._render()

    @t.observe("search")
    def _searched(self, change) -> None:
        matches = self.tree.matching(change["new"])
        self.search_share = self.tree.share(matches)
        self.search_samples = self.search_share * self.tree.total

    @property
    def zoom_node(self) -> int:
        node = self.tree.find(self.zoom)
        return 0 if node is None else node

    # -- what the page gets --

    def _strip(self) -> None:
        if not len(self._times):
            return
        end = float(self._times.max()) if len(self._times) else 0.0
        step = max(end / STRIP_BUCKETS, 0.01)
        buckets = np.minimum((self._times / step).astype(np.int64), STRIP_BUCKETS - 1)
        counts = np.bincount(buckets, weights=self._weights, minlength=STRIP_BUCKETS)
        used = int(buckets.max()) + 1 if len(buckets) else 0
        with self.hold_sync():
            self.strip_seconds = step
            self.strip = counts[:used].tolist()

    def _functions(self) -> None:
        tree = self.tree
        if tree.flat_codes is None:
            return
        ids, own, total = tree.functions()
        kinds = np.zeros(len(tree.names), dtype=np.int8)
        kinds[tree.frame[1:]] = tree.kind[1:]
        keep = ~np.isin(kinds[ids], [PROCESS, CONTAINER])
        ids, own, total = ids[keep], own[keep], total[keep]
        top = np.argsort(-total, kind="stable")[:TABLE_ROWS]
        self.functions = [[str(tree.names[i]), float(s), float(tt), KIND_NAMES[kinds[i]]]
                          for i, s, tt in zip(ids[top].tolist(), own[top].tolist(), total[top].tolist())]

    def _render(self) -> None:
        if self.view == "sandwich":
            self._render_sandwich()
            return
        tree = self.tree
        root = tree.find(self.zoom)
        if root is None:  # a path that is not in this graph: show everything
            root = 0
            if self.zoom:
                self.zoom = ""
                return
        nodes = tree.visible(root, self.min_fraction)
        nodes = nodes[tree.value[nodes] > 0]
        rec = self._records(tree, nodes, root)
        rec["flags"] = np.where(tree.depth[nodes] < tree.depth[root], ANCESTOR, 0)
        self._send_view(tree, [(tree, nodes, rec)], float(tree.value[root]), int(tree.depth[root]))

    def _render_sandwich(self) -> None:
        tree = self.tree
        parts = tree.sandwich(self.sandwich) if self.sandwich else None
        if parts is None:
            self._send_view(tree, [], 0.0, 0)
            return
        callers, callees = parts
        sent = []
        for sub, flag, skip in ((callers, CALLERS, 0), (callees, 0, 1)):
            nodes = sub.visible(0, self.min_fraction)
            nodes = nodes[(sub.depth[nodes] > skip) & (sub.value[nodes] > 0)]  # the function itself drawn once
            rec = self._records(sub, nodes, 0)
            rec["flags"] = flag
            sent.append((sub, nodes, rec))
        self._send_view(tree, sent, float(callers.total), 0)

    def _records(self, tree: FlameTree, nodes: np.ndarray, root: int) -> np.ndarray:
        rec = np.zeros(len(nodes), dtype=NODE_DTYPE)
        rec["x"] = tree.x[nodes] - tree.x[root]
        rec["value"] = tree.value[nodes]
        rec["id"] = nodes
        rec["depth"] = tree.depth[nodes]
        rec["kind"] = tree.kind[nodes]
        rgb = np.rint(node_colors(tree, nodes, self.color_by) * 255).astype(np.uint32)
        rec["color"] = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
        return rec

    def _send_view(self, tree: FlameTree, parts, zoom_total: float, zoom_depth: int) -> None:
        frames = [sub.frame[nodes] for sub, nodes, _ in parts]
        flat = np.concatenate(frames) if frames else np.zeros(0, np.int64)
        used, name_idx = np.unique(np.where(flat >= 0, flat, -1), return_inverse=True)
        names = ["all" if f < 0 else str(tree.names[f]) for f in used.tolist()]
        recs = [rec for _, _, rec in parts]
        rec = np.concatenate(recs) if recs else np.zeros(0, NODE_DTYPE)
        rec["name"] = name_idx.reshape(-1)
        with self.hold_sync():
            self.zoom_total = zoom_total
            self.zoom_depth = zoom_depth
            self.names = names
            self.nodes = rec.tobytes()

    def _legend(self) -> list[list[str]]:
        if self.color_by == "container":
            return [[str(c) or "(host)", h] for c, h in zip(self.tree.containers.tolist(), CONTAINER_HUES * 10)]
        if self.color_by == "diff":
            return [["grew", "#ff4040"], ["shrank", "#4040ff"]]
        kinds = np.array([0, 1, 2])
        fake = FlameTree(self.tree.names, np.array([-1, -1, -1]), np.zeros(3, int), np.zeros(3, int), np.ones(3),
                         np.ones(3), np.zeros(3), kinds.astype(np.int8), np.zeros(3, int), self.tree.containers)
        css = to_css(node_colors(fake, np.arange(3), "kind"))
        return [["user", css[0]], ["kernel", css[1]], ["process", css[2]]]

    @property
    def message_bytes(self) -> int:
        """Size of what the page receives for the current view (names and frame records)."""
        return len(self.nodes) + sum(len(n.encode()) + 3 for n in self.names)

    # -- display: one graph, with a static copy for where widgets do not render --

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, tuple):
            data, meta = bundle
        else:
            data, meta = bundle, {}
        image = getattr(self, "fallback", None)
        if image is not None:
            data = {**data, "image/png": image.png}
        return data, meta
