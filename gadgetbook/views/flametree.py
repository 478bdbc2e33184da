"""Stacks merged into a flame-graph tree with numpy (one pass per depth, no Python per frame), its
layout (children side by side in name order), pruning for rendering, and search shares."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

USER, KERNEL, PROCESS, CONTAINER = 0, 1, 2, 3
KIND_NAMES = ("user", "kernel", "process", "container")
MIXED = -1


def _factorize(values) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    if isinstance(values, list):
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        values = arr
    codes, uniques = pd.factorize(values)
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)


def _codes_in_order(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """(code per key, number of distinct keys), codes numbered by first appearance."""
    import pandas as pd

    codes, uniques = pd.factorize(keys)
    return codes, len(uniques)


def _split_codes(joined: str) -> tuple[np.ndarray, np.ndarray]:
    """(code per ';'-separated piece, distinct pieces): split and hashed by Arrow, with no Python string
    per piece."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pieces = pc.split_pattern(pa.array([joined], pa.large_string()), ";").flatten()
    encoded = pieces.dictionary_encode()
    return (encoded.indices.to_numpy().astype(np.int64),
            np.asarray(encoded.dictionary.to_pylist(), dtype=object))


@dataclass
class FlameTree:
    """Node 0 is the root ("all"); a node is a distinct path of frames from the root.

    `x` is where a node starts, in samples, and it spans `value` samples; children lie side by side
    inside their parent, so a subtree is every node inside its root's interval one level deeper or more.
    """

    names: np.ndarray  # frame names, by frame id
    frame: np.ndarray  # frame id per node (-1 for the root)
    parent: np.ndarray
    depth: np.ndarray
    value: np.ndarray  # samples through the node
    self_value: np.ndarray  # samples that end at the node
    x: np.ndarray
    kind: np.ndarray  # USER, KERNEL, PROCESS, CONTAINER per node
    container: np.ndarray  # container code per node, MIXED when its samples come from several
    containers: np.ndarray  # container names, by code
    delta: np.ndarray | None = None  # for differential graphs: change in share, -1..1
    # The stacks it was built from (frame ids laid end to end, per stack its length, count and the node
    # where it ends): enough to recount it for a time span, list functions, and cut sandwiches.
    flat_codes: np.ndarray | None = None
    lengths: np.ndarray | None = None
    counts: np.ndarray | None = None
    leaf: np.ndarray | None = None

    @property
    def total(self) -> int:
        return int(self.value[0])

    @classmethod
    def build(cls, stacks: list[list[str]] | list[str], counts: np.ndarray, kinds: list[list[int]] | None = None,
              container_codes: np.ndarray | None = None, containers: np.ndarray | None = None) -> FlameTree:
        """From stacks (frame lists or ';'-joined strings, outermost first) and their counts."""
        parts = [s.split(";") if isinstance(s, str) else s for s in stacks]
        parts = [[] if p == [""] else p for p in parts]
        lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        flat_codes, names = _factorize(list(itertools.chain.from_iterable(parts))) if lengths.sum() else (
            np.zeros(0, np.int64), np.zeros(0, dtype=object))
        flat_kind = (np.fromiter(itertools.chain.from_iterable(kinds), dtype=np.int8, count=int(lengths.sum()))
                     if kinds is not None else None)
        return cls.from_flat(flat_codes, names, lengths, counts, flat_kind, container_codes, containers)

    @classmethod
    def from_segments(cls, segments: list[list[str]], segment_kinds: list[int], counts: np.ndarray,
                      container_codes: np.ndarray | None = None, containers: np.ndarray | None = None) -> FlameTree:
        """From columns of ';'-joined frame runs (say: process, user frames, kernel frames), one kind each.

        All rows are joined into one string and split once: no Python list per stack, which is what
        keeps 100,000 stacks well under a second.
        """
        n = len(counts)
        end, marks = "\x01", [f"\x02{k}" for k in range(len(segments))]
        # Each row: mark, frames, mark, frames, ..., end (an empty run leaves an empty name, dropped below).
        template = ";".join(f"{m};{{}}" for m in marks) + f";{end}"
        joined = ";".join(template.format(*row) for row in zip(*segments))
        flat, names = _split_codes(joined)
        is_mark = np.zeros(len(names), dtype=bool)
        seg_of_mark = np.full(len(names), -1)
        index = {v: i for i, v in enumerate(names.tolist())}
        end_code = index.get(end, -1)
        for k, mark in enumerate(marks):
            if mark in index:
                is_mark[index[mark]] = True
                seg_of_mark[index[mark]] = k
        dropped = is_mark.copy()  # marks, the end of a row, and empty names are not frames
        dropped[end_code] = end_code >= 0
        if "" in index:
            dropped[index[""]] = True
        is_end = flat == end_code
        mark_pos = is_mark[flat]
        # The segment a position belongs to: the last mark seen before it.
        last_mark = np.where(mark_pos, np.arange(len(flat)), -1)
        np.maximum.accumulate(last_mark, out=last_mark)
        keep = ~dropped[flat]
        row = np.cumsum(is_end) - is_end  # row index of each position
        lengths = np.bincount(row[keep], minlength=n).astype(np.int64)
        kinds = np.asarray(segment_kinds, dtype=np.int8)[seg_of_mark[flat[np.maximum(last_mark[keep], 0)]]]
        codes = flat[keep]
        # Only names still in use, so frame ids stay dense (a remap by counting: no sort, no hashing).
        used = np.flatnonzero(np.bincount(codes, minlength=len(names)) > 0)
        remap = np.zeros(len(names), dtype=np.int64)
        remap[used] = np.arange(len(used))
        return cls.from_flat(remap[codes], names[used], lengths, counts, kinds, container_codes, containers)

    @classmethod
    def from_flat(cls, flat_codes: np.ndarray, names: np.ndarray, lengths: np.ndarray, counts: np.ndarray,
                  flat_kind: np.ndarray | None = None, container_codes: np.ndarray | None = None,
                  containers: np.ndarray | None = None) -> FlameTree:
        """From every stack's frame ids laid end to end (`lengths` per stack) and their counts."""
        counts = np.asarray(counts, dtype=np.float64)
        n = len(lengths)
        if flat_kind is None:
            flat_kind = np.zeros(len(flat_codes), dtype=np.int8)
        ccodes = (np.asarray(container_codes, dtype=np.int64) if container_codes is not None
                  else np.zeros(n, dtype=np.int64))
        single_container = not n or bool((ccodes == ccodes[0]).all())
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if n else np.zeros(0, np.int64)
        max_depth = int(lengths.max()) if n else 0

        frame, parent, depth, kind = [np.array([-1])], [np.array([-1])], [np.array([0])], [np.array([PROCESS])]
        value, self_value = [np.array([counts.sum()])], [np.array([counts[lengths == 0].sum()])]
        cmin, cmax = [np.array([ccodes.min() if n else 0])], [np.array([ccodes.max() if n else 0])]
        next_id = 1
        name_rank = np.argsort(np.argsort(names.astype(str), kind="stable"), kind="stable") if len(names) else names
        x_all = [np.array([0.0])]
        prev_x = np.zeros(int(lengths.sum()) + 1)  # x of nodes by id, filled depth by depth
        # Longest stacks first: the stacks still going at a depth are then a prefix, taken by slicing.
        by_length = np.argsort(-np.asarray(lengths), kind="stable")
        lengths_s, starts_s, counts_s, ccodes_s = lengths[by_length], starts[by_length], counts[by_length], ccodes[
            by_length]
        going = np.searchsorted(-lengths_s, -np.arange(max_depth), side="left")  # stacks longer than d
        node_s = np.zeros(n, dtype=np.int64)
        for d in range(max_depth):
            k = int(going[d])
            pos = starts_s[:k] + d
            f = flat_codes[pos]
            par = node_s[:k]
            key = par * max(len(names), 1) + f
            local, m = _codes_in_order(key)
            ids = next_id + np.arange(m)
            # Codes number values by first appearance: a first occurrence is where the running maximum grows.
            grows = np.empty(len(local), dtype=bool)
            grows[0] = True
            running = np.maximum.accumulate(local)
            grows[1:] = running[1:] > running[:-1]
            first = np.flatnonzero(grows)
            node_frame = f[first]
            node_parent = par[first]
            weights = counts_s[:k]
            v = np.bincount(local, weights=weights, minlength=m)
            ends = lengths_s[:k] == d + 1
            s = np.bincount(local[ends], weights=weights[ends], minlength=m)
            if container_codes is None or single_container:
                lo = hi = np.full(m, ccodes[0] if n else 0, dtype=np.int64)
            else:
                # A node's container is its first stack's, unless another stack through it differs.
                mine = ccodes_s[:k]
                lo = mine[first]
                differs = np.bincount(local, weights=mine != lo[local], minlength=m) > 0
                hi = np.where(differs, lo + 1, lo)
            # Layout: siblings in name order, packed from their parent's start.
            order = np.argsort(node_parent * max(len(names), 1) + name_rank[node_frame], kind="stable")
            w = v[order]
            csum = np.cumsum(w) - w
            grp = node_parent[order]
            boundary = np.ones(m, dtype=bool)
            boundary[1:] = grp[1:] != grp[:-1]
            group_start = np.maximum.accumulate(np.where(boundary, csum, 0))
            xs = np.empty(m)
            xs[order] = prev_x[grp] + (csum - group_start)
            node_s[:k] = ids[local]
            frame.append(node_frame)
            parent.append(node_parent)
            depth.append(np.full(m, d + 1))
            kind.append(flat_kind[pos[first]])
            value.append(v)
            self_value.append(s)
            cmin.append(lo)
            cmax.append(hi)
            x_all.append(xs)
            prev_x[next_id:next_id + m] = xs
            next_id += m
        node_of_stack = np.empty(n, dtype=np.int64)
        node_of_stack[by_length] = node_s
        lo, hi = np.concatenate(cmin), np.concatenate(cmax)
        tree = cls(
            names=names,
            frame=np.concatenate(frame).astype(np.int64),
            parent=np.concatenate(parent).astype(np.int64),
            depth=np.concatenate(depth).astype(np.int32),
            value=np.concatenate(value),
            self_value=np.concatenate(self_value),
            x=np.concatenate(x_all),
            kind=np.concatenate(kind).astype(np.int8),
            container=np.where(lo == hi, lo, MIXED),
            containers=containers if containers is not None else np.array([""], dtype=object),
            flat_codes=np.asarray(flat_codes, dtype=np.int64), lengths=np.asarray(lengths, dtype=np.int64),
            counts=counts, leaf=node_of_stack,
        )
        return tree

    # -- the same tree for other counts (a time span) --

    def recounted(self, counts: np.ndarray) -> FlameTree:
        """This tree with each stack counted `counts` times instead: same nodes, new values and layout
        (nodes whose stacks have no samples get width 0, and `visible` leaves them out)."""
        counts = np.asarray(counts, dtype=np.float64)
        n = len(self.frame)
        self_value = np.bincount(self.leaf, weights=counts, minlength=n)
        value = self_value.copy()
        by_depth = self._by_depth()
        for ids in reversed(by_depth[1:]):
            np.add.at(value, self.parent[ids], value[ids])
        x = np.zeros(n)
        offset = self._sibling_offsets(value)
        for ids in by_depth[1:]:
            x[ids] = x[self.parent[ids]] + offset[ids]
        return FlameTree(self.names, self.frame, self.parent, self.depth, value, self_value, x, self.kind,
                         self.container, self.containers, None, self.flat_codes, self.lengths, counts, self.leaf)

    def _by_depth(self) -> list[np.ndarray]:
        order = np.argsort(self.depth, kind="stable")
        bounds = np.searchsorted(self.depth[order], np.arange(int(self.depth.max()) + 2))
        return [order[bounds[d]:bounds[d + 1]] for d in range(len(bounds) - 1)]

    def _sibling_offsets(self, value: np.ndarray) -> np.ndarray:
        """Where each node starts inside its parent: siblings side by side in name order."""
        if not hasattr(self, "_sibling_order"):
            rank = np.argsort(np.argsort(self.names.astype(str), kind="stable"), kind="stable") if len(
                self.names) else np.zeros(0, np.int64)
            frame_rank = np.where(self.frame >= 0, rank[np.maximum(self.frame, 0)] if len(rank) else 0, -1)
            order = np.lexsort((frame_rank[1:], self.parent[1:])) + 1
            grp = self.parent[order]
            boundary = np.ones(len(order), dtype=bool)
            boundary[1:] = grp[1:] != grp[:-1]
            self._sibling_order = (order, boundary)
        order, boundary = self._sibling_order
        w = value[order]
        csum = np.cumsum(w) - w
        group_start = np.maximum.accumulate(np.where(boundary, csum, 0))
        out = np.zeros(len(value))
        out[order] = csum - group_start
        return out

    # -- functions: totals, and the sandwich of one --

    def stack_rows(self) -> np.ndarray:
        """For every frame laid end to end in flat_codes, the stack (row) it belongs to."""
        return np.repeat(np.arange(len(self.lengths)), self.lengths)

    def functions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frame ids, self samples, total samples) per function: self where a stack ends in it, total
        where it appears at all (once per stack, however deep the recursion)."""
        nf = max(len(self.names), 1)
        rows = self.stack_rows()
        pairs = np.sort(rows * nf + self.flat_codes)  # sorted unique: numpy's hashed unique is slower here
        pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])] if len(pairs) else pairs
        total = np.bincount(pairs % nf, weights=self.counts[pairs // nf], minlength=len(self.names))
        has = self.lengths > 0
        ends = np.cumsum(self.lengths)[has] - 1
        own = np.bincount(self.flat_codes[ends], weights=self.counts[has], minlength=len(self.names))
        ids = np.flatnonzero(total > 0)
        return ids, own[ids], total[ids]

    def sandwich(self, name: str) -> tuple[FlameTree, FlameTree] | None:
        """(callers, callees) of a function, each a tree whose first frame is that function: callers
        read outward from it (its caller, the caller's caller, ...), callees inward. A stack that passes
        through the function more than once (recursion) counts from its outermost call."""
        hit = np.flatnonzero(self.names == name)
        if not len(hit):
            return None
        fid = int(hit[0])
        rows = self.stack_rows()
        pos = np.arange(len(self.flat_codes)) - np.repeat(np.cumsum(self.lengths) - self.lengths, self.lengths)
        at = np.flatnonzero(self.flat_codes == fid)
        if not len(at):
            return None
        first_pos = np.full(len(self.lengths), np.iinfo(np.int64).max)
        np.minimum.at(first_pos, rows[at], pos[at])
        keep = first_pos < np.iinfo(np.int64).max
        which = np.flatnonzero(keep)
        starts = (np.cumsum(self.lengths) - self.lengths)[which]
        cut = first_pos[which]
        kinds = self.kind_of_frames()
        # Callees: from the function to the end of each stack.
        lens_in = self.lengths[which] - cut
        idx_in = np.concatenate([np.arange(s + c, s + c + n) for s, c, n in zip(starts, cut, lens_in)]) if len(
            which) else np.zeros(0, np.int64)
        # Callers: from the function back to the root, reversed.
        lens_out = cut + 1
        idx_out = np.concatenate([np.arange(s + c, s - 1, -1) for s, c in zip(starts, cut)]) if len(
            which) else np.zeros(0, np.int64)
        c = self.counts[which]
        callees = FlameTree.from_flat(self.flat_codes[idx_in], self.names, lens_in, c, kinds[idx_in])
        callers = FlameTree.from_flat(self.flat_codes[idx_out], self.names, lens_out, c, kinds[idx_out])
        return callers, callees

    def kind_of_frames(self) -> np.ndarray:
        """The kind (user, kernel, ...) of every frame in flat_codes, from the node each one reached."""
        out = np.zeros(len(self.flat_codes), dtype=np.int8)
        node = self.leaf.copy()
        ends = np.cumsum(self.lengths) - 1
        remaining = self.lengths.copy()
        # Walk every stack from its leaf node up to the root, filling its frames from the end.
        while True:
            live = np.flatnonzero(remaining > 0)
            if not len(live):
                break
            at = ends[live] - (self.lengths[live] - remaining[live])
            out[at] = self.kind[node[live]]
            node[live] = self.parent[node[live]]
            remaining[live] -= 1
        return out

    # -- questions about the tree --

    def name(self, node: int) -> str:
        return "all" if node == 0 else str(self.names[self.frame[node]])

    def path(self, node: int) -> str:
        """The frames from the root down to node, ';'-joined ("" for the root)."""
        out = []
        while node > 0:
            out.append(self.name(node))
            node = int(self.parent[node])
        return ";".join(reversed(out))

    def find(self, path: str) -> int | None:
        """The node at a ';'-joined path of frames, or None."""
        node = 0
        if not path:
            return node
        index = {n: i for i, n in enumerate(self.names.tolist())}
        for name in path.split(";"):
            fid = index.get(name)
            if fid is None:
                return None
            hit = np.flatnonzero((self.parent == node) & (self.frame == fid))
            if not len(hit):
                return None
            node = int(hit[0])
        return node

    def visible(self, root: int = 0, min_fraction: float = 1 / 2000) -> np.ndarray:
        """Nodes worth drawing when `root` fills the width: its subtree down to `min_fraction` of its
        width (about half a pixel), plus its ancestors; sorted by depth then x."""
        x0, w, d0 = self.x[root], self.value[root], self.depth[root]
        inside = (self.x >= x0) & (self.x + self.value <= x0 + w + 1e-6) & (self.depth >= d0)
        wide = self.value >= max(w * min_fraction, 1e-12)
        keep = inside & wide
        node = root
        while node > 0:
            node = int(self.parent[node])
            keep[node] = True
        return np.flatnonzero(keep)

    def matching(self, text: str) -> np.ndarray:
        """Nodes whose frame name contains `text` (case-insensitive)."""
        if not text:
            return np.zeros(0, dtype=np.int64)
        needle = text.lower()
        hits = np.fromiter((needle in str(n).lower() for n in self.names), dtype=bool, count=len(self.names))
        match = np.zeros(len(self.frame), dtype=bool)
        match[1:] = hits[self.frame[1:]]
        return np.flatnonzero(match)

    def share(self, nodes: np.ndarray, root: int = 0) -> float:
        """Share of root's samples whose stacks pass through any of `nodes` (nested ones counted once)."""
        if not len(nodes) or self.value[root] <= 0:
            return 0.0
        marked = np.zeros(len(self.frame), dtype=bool)
        marked[nodes] = True
        covered = marked.copy()
        # Node ids grow with depth, so one vectorized pass per depth carries marks down the tree.
        for d in range(1, int(self.depth.max()) + 1):
            at = np.flatnonzero(self.depth == d)
            covered[at] |= covered[self.parent[at]]
        top = marked.copy()
        top[1:] &= ~covered[self.parent[1:]]
        sub = self.visible(root, min_fraction=0)
        sub = sub[self.depth[sub] >= self.depth[root]]
        return float(min(self.value[sub][top[sub]].sum() / self.value[root], 1.0))
