"""Flame graph colors, shared by the interactive and the static views: warm for user code, teal for
the kernel, grey for processes, one hue per container, red/blue for differential graphs."""

from __future__ import annotations

import zlib

import numpy as np

from gadgetbook.views.flametree import CONTAINER, KERNEL, MIXED, PROCESS, FlameTree

CONTAINER_HUES = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                  "#9c755f", "#bab0ac"]


def _jitter(names: np.ndarray) -> np.ndarray:
    """A stable 0..1 value per frame name, so a function keeps its shade across graphs."""
    return np.array([zlib.crc32(str(n).encode()) / 0xFFFFFFFF for n in names.tolist()])


def node_colors(tree: FlameTree, nodes: np.ndarray, color_by: str = "kind") -> np.ndarray:
    """RGB (0..1) per node."""
    out = np.zeros((len(nodes), 3))
    kind = tree.kind[nodes]
    frame = tree.frame[nodes]
    j = np.zeros(len(nodes))
    has = frame >= 0
    if has.any():
        j[has] = _jitter(tree.names)[frame[has]]
    if color_by == "diff" and tree.delta is not None:
        d = np.clip(tree.delta[nodes] * 5, -1, 1)  # a 20% change of share is full color
        grew, shrank = np.clip(d, 0, 1), np.clip(-d, 0, 1)
        out[:, 0] = np.where(d >= 0, 1.0, 1.0 - 0.75 * shrank)
        out[:, 1] = 1.0 - 0.75 * np.maximum(grew, shrank)
        out[:, 2] = np.where(d >= 0, 1.0 - 0.75 * grew, 1.0)
        return out
    if color_by == "container":
        hues = np.array([_hex(h) for h in CONTAINER_HUES])
        code = tree.container[nodes]
        out[:] = np.where((code == MIXED)[:, None], np.array([0.75, 0.75, 0.75]),
                          hues[np.maximum(code, 0) % len(hues)])
        out = out * (0.85 + 0.15 * j[:, None])
        return np.clip(out, 0, 1)
    # by kind: user warm (red..yellow), kernel teal, process and container grey
    out[:, 0] = 0.9 + 0.1 * j
    out[:, 1] = 0.35 + 0.45 * j
    out[:, 2] = 0.1 + 0.1 * j
    k = kind == KERNEL
    out[k] = np.stack([0.25 + 0.15 * j[k], 0.65 + 0.15 * j[k], 0.65 + 0.1 * j[k]], axis=1)
    g = (kind == PROCESS) | (kind == CONTAINER)
    out[g] = np.stack([0.7 + 0.1 * j[g]] * 3, axis=1)
    return np.clip(out, 0, 1)


def _hex(h: str) -> tuple[float, float, float]:
    return tuple(int(h[i:i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


def to_css(rgb: np.ndarray) -> list[str]:
    v = np.rint(np.clip(rgb, 0, 1) * 255).astype(int)
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in v.tolist()]
