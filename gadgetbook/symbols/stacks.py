"""Counted stack ids -> named stacks: one row per (process, user stack, kernel stack), frames outermost first."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from gadgetbook.frames.coded import factorize_rows
from gadgetbook.symbols.kallsyms import UNKNOWN, KernelSymbols
from gadgetbook.symbols.process import UserSymbols

EFAULT, NOT_ASKED = 14, 1
LOST_STACK = "[lost stack]"
SEP = ";"


def _stack_frame(status: int) -> str:
    # No user stack in a kernel thread and no kernel stack for a sample taken in user mode
    # (-EFAULT), or not asked for (-1): no frames. Anything else (-EEXIST on a hash collision in
    # the stack map, -ENOMEM when it is full) lost a stack that existed: say so in the graph.
    return "" if -status in (EFAULT, NOT_ASKED) else LOST_STACK


def _unknown(addr: int, file: str | None, file_offset: int | None, addresses: bool) -> str:
    if not addresses:
        return UNKNOWN
    if file and file_offset is not None:
        return f"[unknown {file}+{file_offset:#x}]"
    return f"[unknown {addr:#x}]"


def _return_adjusted(frames: np.ndarray) -> np.ndarray:
    """Every frame but the innermost is a return address, which may already point past the end of
    the calling function (a call as its last instruction): look such frames up one byte earlier."""
    out = frames.copy()
    if len(out) > 1:
        out[1:] -= np.uint64(1)
    return out


class StackNamer:
    """Turns stack ids and the stack map's addresses into frame names, caching per stack."""

    def __init__(self, user: UserSymbols, kernel: KernelSymbols | None, addresses: bool = False) -> None:
        self.user = user
        self.kernel = kernel
        self.addresses = addresses

    def kernel_stacks(self, ids: np.ndarray, stacks: Mapping[int, np.ndarray]) -> dict[int, tuple[str, str]]:
        out: dict[int, tuple[str, str]] = {}
        wanted = [i for i in np.unique(ids).tolist() if i >= 0 and i in stacks]
        if not wanted:
            return out
        frames = [stacks[i] for i in wanted]
        flat = np.concatenate([_return_adjusted(f) for f in frames]) if frames else np.zeros(0, np.uint64)
        names = self.kernel.lookup(flat) if self.kernel is not None else np.full(len(flat), None, dtype=object)
        pos = 0
        for sid, f in zip(wanted, frames):
            n = len(f)
            part = [nm if nm is not None else _unknown(int(a), None, None, self.addresses)
                    for nm, a in zip(names[pos:pos + n].tolist(), f.tolist())]
            pos += n
            out[sid] = (SEP.join(reversed(part)), SEP.join(f"{a:#x}" for a in reversed(f.tolist())))
        return out

    def user_stacks(self, pid: int, ids: list[int], stacks: Mapping[int, np.ndarray]) -> dict[int, tuple[str, str]]:
        out: dict[int, tuple[str, str]] = {}
        wanted = [i for i in ids if i >= 0 and i in stacks]
        if not wanted:
            return out
        frames = [stacks[i] for i in wanted]
        flat = np.concatenate([_return_adjusted(f) for f in frames])
        names, files = self.user.lookup(pid, flat)
        maps = self.user.processes.get(pid)
        pos = 0
        for sid, f in zip(wanted, frames):
            n = len(f)
            part = []
            for k, (nm, a) in enumerate(zip(names[pos:pos + n].tolist(), f.tolist())):
                if nm is None:
                    nm = _unknown(a, files[pos + k], _file_offset(maps, a), self.addresses)
                part.append(nm)
            pos += n
            out[sid] = (SEP.join(reversed(part)), SEP.join(f"{a:#x}" for a in reversed(f.tolist())))
        return out

    def rows(self, keys: np.ndarray, counts: np.ndarray, stacks: Mapping[int, np.ndarray]) -> dict[str, np.ndarray]:
        """Sum the counts over threads, then name every stack. `keys` has the BPF stack_key layout."""
        if len(keys):
            codes, first = factorize_rows(keys["pid"], keys["user_stack_id"], keys["kernel_stack_id"],
                                          keys["mntns_id"], keys["comm"])
            summed = np.bincount(codes, weights=counts.astype(np.float64), minlength=len(first))
            keys, counts = keys[first], np.rint(summed).astype(np.int64)
        else:
            counts = np.zeros(0, dtype=np.int64)
        n = len(keys)
        kernel = self.kernel_stacks(keys["kernel_stack_id"], stacks)
        user_stack = np.empty(n, dtype=object)
        user_addr = np.empty(n, dtype=object)
        kernel_stack = np.empty(n, dtype=object)
        kernel_addr = np.empty(n, dtype=object)
        pids = keys["pid"]
        uids = keys["user_stack_id"].astype(np.int64)
        kids = keys["kernel_stack_id"].astype(np.int64)
        for pid in np.unique(pids).tolist():
            rows = np.flatnonzero(pids == pid)
            named = self.user_stacks(pid, np.unique(uids[rows]).tolist(), stacks)
            for r in rows.tolist():
                sid = int(uids[r])
                user_stack[r], user_addr[r] = named.get(sid, (_stack_frame(sid) if sid < 0 else LOST_STACK, ""))
        for r in range(n):
            sid = int(kids[r])
            kernel_stack[r], kernel_addr[r] = kernel.get(sid, (_stack_frame(sid) if sid < 0 else LOST_STACK, ""))
        return {
            "pid": pids.astype(np.uint32),
            "comm": keys["comm"],
            "mntns_id": keys["mntns_id"].astype(np.uint64),
            "user_stack": user_stack,
            "kernel_stack": kernel_stack,
            "user_addresses": user_addr,
            "kernel_addresses": kernel_addr,
            "count": counts,
        }


def _file_offset(maps, addr: int) -> int | None:
    if maps is None:
        return None
    k = int(np.searchsorted(maps.starts, np.uint64(addr), side="right")) - 1
    if k < 0 or addr >= maps.mappings[k].end:
        return None
    m = maps.mappings[k]
    return addr - m.start + m.offset
