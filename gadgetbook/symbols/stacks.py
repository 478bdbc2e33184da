"""Sampled stacks -> named stacks: the distinct (process, user, kernel, Python) stacks of a run, each
named once, frames outermost first, Python frames merged where the interpreter's eval loop runs, and
marker frames where a walk ended early."""

from __future__ import annotations

import numpy as np

from gadgetbook.frames.coded import factorize_rows
from gadgetbook.symbols.kallsyms import UNKNOWN, KernelSymbols
from gadgetbook.symbols.process import UserSymbols
from gadgetbook.symbols.python import EVAL_LOOP, CodeNames

SEP = ";"
PY_ENTRY = 1
# How the kernel's user-stack walk ended (enum user_end in bpf/profile/program.bpf.c).
(END_COMPLETE, END_DEPTH, END_NO_PROCESS, END_NO_MAPPING, END_NO_ROW, END_UNSUPPORTED, END_READ,
 END_BAD_FRAME, END_NOT_ASKED) = range(9)
PY_NONE, PY_OK, PY_NO_THREAD, PY_DEPTH, PY_READ = range(5)
TRUNCATED = "[truncated: {}]"
_WHY = {
    END_DEPTH: "deeper than {depth} frames",
    END_NO_PROCESS: "unwind tables not loaded yet",
    END_NO_MAPPING: "code outside any mapped file",
    END_NO_ROW: "no unwind info in {module}",
    END_UNSUPPORTED: "unwind rule not followed in {module}",
    END_READ: "stack unreadable in {module}",
    END_BAD_FRAME: "bad frame in {module}",
}
KERNEL_TRUNCATED = TRUNCATED.format("kernel stack deeper than {} frames")
PY_TRUNCATED = TRUNCATED.format("more than {} Python frames")
NO_ADDRESS = "-"


def marker(end: int, module: str, depth: int) -> str:
    """The frame that stands, outermost, for the part of a stack that could not be walked."""
    return TRUNCATED.format(_WHY[end].format(module=module or "?", depth=depth))


class SampleStacks:
    """The distinct stacks of a run (per process) and, per sample, which one it was."""

    def __init__(self, user_depth: int, kernel_depth: int, py_depth: int) -> None:
        self.user_depth, self.kernel_depth, self.py_depth = user_depth, kernel_depth, py_depth
        self._index: dict[bytes, int] = {}
        self.pid: list[int] = []
        self.user: list[np.ndarray] = []
        self.kernel: list[np.ndarray] = []
        self.py: list[np.ndarray] = []
        self.user_end: list[int] = []
        self.py_state: list[int] = []
        self._samples: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.pid)

    def add(self, events: np.ndarray) -> None:
        """Fold a batch of ring-buffer records (struct stack_sample) in; keeps 32 bytes per sample."""
        n = len(events)
        if not n:
            return
        user = _masked(events["user"], events["user_len"])
        kernel = _masked(events["kernel"], events["kernel_len"])
        py = _masked(events["py"], events["py_len"])
        head = np.stack([events["pid"].astype(np.uint64),
                         events["user_end"].astype(np.uint64) | events["py_state"].astype(np.uint64) << 8], 1)
        codes, first = factorize_rows(head, user, kernel, py)
        ids = np.empty(len(first), dtype=np.int32)
        for k, row in enumerate(first.tolist()):
            key = head[row].tobytes() + user[row].tobytes() + kernel[row].tobytes() + py[row].tobytes()
            sid = self._index.get(key)
            if sid is None:
                sid = self._index[key] = len(self.pid)
                e = events[row]
                self.pid.append(int(e["pid"]))
                self.user.append(e["user"][:e["user_len"]].copy())
                self.kernel.append(e["kernel"][:e["kernel_len"]].copy())
                self.py.append(e["py"][:e["py_len"]].copy())
                self.user_end.append(int(e["user_end"]))
                self.py_state.append(int(e["py_state"]))
            ids[k] = sid
        rec = np.zeros(n, SAMPLE)
        rec["time"], rec["pid"], rec["tid"], rec["mntns_id"], rec["comm"] = (
            events["timestamp_raw"], events["pid"], events["tid"], events["mntns_id"], events["comm"])
        rec["stack"] = ids[codes]
        self._samples.append(rec)

    def samples(self) -> np.ndarray:
        return np.concatenate(self._samples) if self._samples else np.zeros(0, SAMPLE)

    def code_objects(self, pid: int, since: int = 0) -> set[int]:
        """Code objects in pid's Python frames of stacks numbered `since` and later."""
        out: set[int] = set()
        for i in range(since, len(self.pid)):
            if self.pid[i] == pid and len(self.py[i]):
                out.update((self.py[i] & ~np.uint64(PY_ENTRY)).tolist())
        return out


SAMPLE = np.dtype([("time", "<u8"), ("mntns_id", "<u8"), ("pid", "<u4"), ("tid", "<u4"), ("stack", "<i4"),
                   ("comm", "S16")])


def _masked(frames: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Frames past each record's length zeroed (the BPF side leaves old values there)."""
    keep = np.arange(frames.shape[1]) < lengths[:, None].astype(np.int64)
    return np.where(keep, frames, 0).astype(np.uint64)


def _unknown(module: str | None, offset: int | None, addr: int, addresses: bool) -> str:
    if not addresses:
        return UNKNOWN
    if module and offset is not None:
        return f"[unknown {module}+{offset:#x}]"
    return f"[unknown {addr:#x}]"


class StackNamer:
    """Names every distinct stack of a SampleStacks: four ';'-joined strings per stack, outermost first."""

    def __init__(self, user: UserSymbols, kernel: KernelSymbols | None, code: dict[int, CodeNames] | None = None,
                 addresses: bool = False) -> None:
        self.user = user
        self.kernel = kernel
        self.code = code or {}
        self.addresses = addresses

    def name(self, stacks: SampleStacks) -> dict[str, np.ndarray]:
        n = len(stacks)
        out = {k: np.empty(n, dtype=object) for k in ("user_stack", "user_addresses", "user_locations",
                                                       "kernel_stack", "kernel_addresses")}
        self._kernel(stacks, out)
        pids = np.asarray(stacks.pid, dtype=np.int64)
        for pid in np.unique(pids).tolist():
            self._user(pid, np.flatnonzero(pids == pid).tolist(), stacks, out)
        return out

    # -- kernel --

    def _kernel(self, stacks: SampleStacks, out: dict[str, np.ndarray]) -> None:
        frames = stacks.kernel
        flat = np.concatenate(frames) if frames else np.zeros(0, np.uint64)
        flat = _return_adjusted(flat, frames)
        names = self.kernel.lookup(flat) if self.kernel is not None else np.full(len(flat), None, dtype=object)
        pos = 0
        for i, f in enumerate(frames):
            k = len(f)
            part = [nm if nm is not None else _unknown(None, None, a, self.addresses)
                    for nm, a in zip(names[pos:pos + k].tolist(), f.tolist())][::-1]
            addrs = [f"{a:#x}" for a in reversed(f.tolist())]
            if k >= stacks.kernel_depth:
                part.insert(0, KERNEL_TRUNCATED.format(stacks.kernel_depth))
                addrs.insert(0, NO_ADDRESS)
            pos += k
            out["kernel_stack"][i] = SEP.join(part)
            out["kernel_addresses"][i] = SEP.join(addrs)

    # -- user: native frames, Python frames, markers --

    def _user(self, pid: int, rows: list[int], stacks: SampleStacks, out: dict[str, np.ndarray]) -> None:
        frames = [stacks.user[i] for i in rows]
        flat = np.concatenate(frames) if frames else np.zeros(0, np.uint64)
        looked = _return_adjusted(flat, frames)
        names, files = self.user.lookup(pid, looked)
        offsets = self._offsets(pid, looked)
        code = self.code.get(pid)
        pos = 0
        for i, f in zip(rows, frames):
            k = len(f)
            part, addrs, locs = [], [], []
            for j in range(k):  # innermost first here
                a = int(f[j])
                nm, mod, off = names[pos + j], files[pos + j], offsets[pos + j]
                part.append(nm if nm is not None else _unknown(mod, off, a, self.addresses))
                addrs.append(f"{a:#x}")
                locs.append(f"{mod}+{off:#x}" if mod and off is not None else f"{a:#x}")
            pos += k
            part, addrs, locs = part[::-1], addrs[::-1], locs[::-1]
            py = stacks.py[i]
            if len(py):
                part, addrs, locs = self._merge_python(part, addrs, locs, py, code, stacks.py_state[i],
                                                       stacks.py_depth)
            end = stacks.user_end[i]
            if end not in (END_COMPLETE, END_NOT_ASKED):
                module = locs[0].split("+", 1)[0] if locs and "+" in locs[0] else ""
                part.insert(0, marker(end, module, stacks.user_depth))
                addrs.insert(0, NO_ADDRESS)
                locs.insert(0, NO_ADDRESS)
            out["user_stack"][i] = SEP.join(part)
            out["user_addresses"][i] = SEP.join(addrs)
            out["user_locations"][i] = SEP.join(locs)

    def _offsets(self, pid: int, addresses: np.ndarray) -> list[int | None]:
        maps = self.user.processes.get(pid)
        out: list[int | None] = [None] * len(addresses)
        if maps is None or not len(maps.starts) or not len(addresses):
            return out
        m = np.searchsorted(maps.starts, addresses, side="right").astype(np.int64) - 1
        inside = (m >= 0) & (addresses < maps.ends[np.maximum(m, 0)])
        file_off = np.array([mp.offset for mp in maps.mappings], dtype=np.uint64)
        mm = np.maximum(m, 0)
        off = addresses.astype(np.uint64) - maps.starts[mm] + file_off[mm]
        for j in np.flatnonzero(inside).tolist():
            out[j] = int(off[j])
        return out

    @staticmethod
    def _merge_python(part: list[str], addrs: list[str], locs: list[str], py: np.ndarray, code: CodeNames | None,
                      state: int, depth: int) -> tuple[list[str], list[str], list[str]]:
        """Native frames (outermost first) with each eval-loop frame replaced by the Python frames it ran."""
        segments: list[list[int]] = []  # innermost run first; each run innermost first
        current: list[int] = []
        for v in py.tolist():
            current.append(v)
            if v & PY_ENTRY:
                segments.append(current)
                current = []
        if current:
            segments.append(current)
        evals = [j for j, nm in enumerate(part) if nm == EVAL_LOOP]  # outermost first

        def frames(run: list[int]) -> tuple[list[str], list[str], list[str]]:
            names, a, lo = [], [], []
            for v in reversed(run):  # outermost first
                obj = v & ~PY_ENTRY
                nm = code.names.get(obj) if code is not None else None
                names.append(nm or f"[unknown Python code {obj:#x}]")
                a.append(f"{obj:#x}")
                lo.append(code.files.get(obj, f"{obj:#x}") if code is not None else f"{obj:#x}")
            return names, a, lo

        # Pair the innermost run with the innermost eval-loop frame; runs left over (the native walk
        # ended early) go before the outermost eval frame, or before everything if there is none.
        replace: dict[int, list[list[int]]] = {}
        for r, run in enumerate(segments):
            if r < len(evals):
                replace.setdefault(evals[len(evals) - 1 - r], []).append(run)
            else:
                replace.setdefault(evals[0] if evals else -1, []).insert(0, run)
        new_p, new_a, new_l = [], [], []
        # Frames past the depth limit are the outermost Python ones: the marker stands where they would.
        pending_marker = state == PY_DEPTH

        def emit(run: list[int]) -> None:
            nonlocal pending_marker
            if pending_marker:
                new_p.append(PY_TRUNCATED.format(depth))
                new_a.append(NO_ADDRESS)
                new_l.append(NO_ADDRESS)
                pending_marker = False
            n, a, lo = frames(run)
            new_p.extend(n)
            new_a.extend(a)
            new_l.extend(lo)

        for run in replace.get(-1, []):
            emit(run)
        for j in range(len(part)):
            if j in replace:
                for run in replace[j]:  # outer runs first: left-over runs went in at the front
                    emit(run)
                continue
            new_p.append(part[j])
            new_a.append(addrs[j])
            new_l.append(locs[j])
        return new_p, new_a, new_l


def _return_adjusted(flat: np.ndarray, frames: list[np.ndarray]) -> np.ndarray:
    """Every frame but the innermost of each stack is a return address, which may point past the end of
    the calling function (a call as its last instruction): look such frames up one byte earlier."""
    out = flat.astype(np.uint64, copy=True)
    if not len(out):
        return out
    lengths = np.fromiter((len(f) for f in frames), dtype=np.int64, count=len(frames))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    not_first = np.ones(len(out), dtype=bool)
    not_first[starts[lengths > 0]] = False
    out[not_first] -= np.uint64(1)
    return out
