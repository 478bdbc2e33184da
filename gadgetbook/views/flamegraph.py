"""The interactive flame graph: an anywidget whose canvas renderer lives in flamegraph.js.

The tree stays in Python; the page gets only the frames wide enough to see for the current zoom
root (a few thousand at most, packed in one binary buffer), so 100,000 distinct stacks never reach
the browser as 100,000 DOM nodes. Zoom and search are synced traits, so they work (and can be
tested) from Python as well as by clicking and typing.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import numpy as np
import traitlets as t

from gadgetbook.views.flamecolors import CONTAINER_HUES, node_colors, to_css
from gadgetbook.views.flametree import FlameTree

# One record per drawn frame (little-endian), read in flamegraph.js with a DataView.
NODE_DTYPE = np.dtype([("x", "<f8"), ("value", "<f8"), ("id", "<u4"), ("name", "<u4"), ("depth", "<u2"),
                       ("kind", "u1"), ("flags", "u1"), ("color", "<u4"), ("pad", "<u4")])
ANCESTOR = 1  # flags: drawn only to show where the zoom root sits


class FlameGraph(anywidget.AnyWidget):
    """Click a frame to zoom into it, Reset to zoom out, type to highlight frames and see their share."""

    _esm = Path(__file__).with_name("flamegraph.js")
    _css = Path(__file__).with_name("flamegraph.css")

    title = t.Unicode("").tag(sync=True)
    zoom = t.Unicode("", help="The zoom root as ';'-joined frames from the root; '' shows everything.").tag(sync=True)
    search = t.Unicode("", help="Frames whose names contain this (case-insensitive) are highlighted.").tag(sync=True)
    search_share = t.Float(0.0, help="Share of all samples in stacks through a matching frame.").tag(sync=True)
    search_samples = t.Float(0.0).tag(sync=True)
    color_by = t.Unicode("kind").tag(sync=True)
    total = t.Float(0.0).tag(sync=True)
    zoom_total = t.Float(0.0).tag(sync=True)
    zoom_depth = t.Int(0).tag(sync=True)
    names = t.List(t.Unicode()).tag(sync=True)
    nodes = t.Bytes(b"").tag(sync=True)
    legend = t.List(t.List(t.Unicode())).tag(sync=True)
    height = t.Int(0, help="Canvas height in pixels; 0 fits the deepest stack.").tag(sync=True)

    def __init__(self, tree: FlameTree, color_by: str = "kind", min_fraction: float = 1 / 2400, **kwargs) -> None:
        self.tree = tree
        self.min_fraction = min_fraction
        super().__init__(color_by=color_by, total=float(tree.total), **kwargs)
        self.legend = self._legend()
        self.on_msg(self._on_frontend_msg)
        self._render()

    # -- what the page asks for --

    def _on_frontend_msg(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("type") == "zoom":
            node = int(content.get("node", 0))
            if 0 <= node < len(self.tree.frame):
                self.zoom = self.tree.path(node)

    def zoom_to(self, node: int) -> None:
        self.zoom = self.tree.path(node)

    def reset(self) -> None:
        self.zoom = ""

    @t.observe("zoom", "color_by")
    def _changed(self, _change) -> None:
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

    def _render(self) -> None:
        tree = self.tree
        root = tree.find(self.zoom)
        if root is None:  # a path that is not in this graph: show everything
            root = 0
            if self.zoom:
                self.zoom = ""
                return
        nodes = tree.visible(root, self.min_fraction)
        rec = np.zeros(len(nodes), dtype=NODE_DTYPE)
        frame = tree.frame[nodes]
        used, name_idx = np.unique(np.where(frame >= 0, frame, -1), return_inverse=True)
        names = ["all" if f < 0 else str(tree.names[f]) for f in used.tolist()]
        rec["x"] = tree.x[nodes] - tree.x[root]
        rec["value"] = tree.value[nodes]
        rec["id"] = nodes
        rec["name"] = name_idx.reshape(-1)
        rec["depth"] = tree.depth[nodes]
        rec["kind"] = tree.kind[nodes]
        rec["flags"] = np.where(tree.depth[nodes] < tree.depth[root], ANCESTOR, 0)
        rgb = np.rint(node_colors(tree, nodes, self.color_by) * 255).astype(np.uint32)
        rec["color"] = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
        with self.hold_sync():
            self.zoom_total = float(tree.value[root])
            self.zoom_depth = int(tree.depth[root])
            self.names = names
            self.nodes = rec.tobytes()

    def _legend(self) -> list[list[str]]:
        if self.color_by == "container":
            return [[str(c), h] for c, h in zip(self.tree.containers.tolist(), CONTAINER_HUES * 10)]
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
