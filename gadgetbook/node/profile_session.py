"""The profile gadget on this host: a CPU-clock perf event per online CPU runs the sampler, which
counts stacks in the kernel; read the counts and the stack map once sampling stops."""

from __future__ import annotations

import ctypes as C
import fcntl
import os
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from gadgetbook.catalog.spec import GadgetSpec
from gadgetbook.errors import GadgetError
from gadgetbook.kernel import libbpf, perf
from gadgetbook.kernel.loader import BpfObject, LoadPlan
from gadgetbook.node.session import EVENTS_MAP, LOST_MAP, add_to_mntns_filter, check_privileges

PROGRAM, COUNTS_MAP, STACKS_MAP = "do_sample", "counts", "stacks"
MAX_STACK_DEPTH = 127
PERF_EVENT_IOC_DISABLE = 0x2401
ENOENT = 2


class ProfileSession:
    """Sampling attached on every online CPU until `stop()`; `close()` frees the events and the object."""

    def __init__(self, spec: GadgetSpec, params: dict[str, Any], *, mntns_ids: Iterable[int] | None = None,
                 pid: int | None = None) -> None:
        if params.get("kernel_only") and params.get("user_only"):
            raise GadgetError("--kernel-only and --user-only exclude each other; give at most one of them.")
        check_privileges()
        self.spec = spec
        self.frequency = int(params.get("frequency", 49))
        rodata: dict[str, int | bool] = spec.rodata(params)
        rodata["gadget_filter_by_mntns"] = mntns_ids is not None
        rodata["gadget_filter_pid"] = pid or 0
        # The shared header brings a ring buffer this gadget never writes: keep it at one page.
        plan = LoadPlan(groups=spec.hooks, rodata=rodata, max_entries={EVENTS_MAP: os.sysconf("SC_PAGE_SIZE")})
        self.obj = BpfObject(str(spec.object_path), plan, attach=False)
        self._perf_fds: list[int] = []
        try:
            if mntns_ids is not None:
                add_to_mntns_filter(self.obj, mntns_ids)
            for cpu in perf.online_cpus():
                pfd = perf.open_cpu_clock(cpu, self.frequency)
                try:
                    self.obj.attach_perf_event(PROGRAM, pfd)
                except BaseException:
                    os.close(pfd)
                    raise
                # The link owns the fd now: libbpf closes it when the link is destroyed.
                self._perf_fds.append(pfd)
        except BaseException:
            self.obj.close()
            raise
        self.started = time.monotonic()
        self.stopped: float | None = None
        self.key_dtype = spec.event_dtype
        self.cpus = len(self._perf_fds)

    def stop(self) -> None:
        """Stop sampling on every CPU; the counts stay readable until close()."""
        if self.stopped is None:
            for fd in self._perf_fds:
                try:
                    fcntl.ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)
                except OSError:
                    pass  # noqa: S110 - an fd already gone samples nothing either
            self.stopped = time.monotonic()

    @property
    def seconds(self) -> float:
        return (self.stopped or time.monotonic()) - self.started

    def read_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys in the stack_key layout, sample counts) of every counted stack so far."""
        fd = self.obj.map_fd(COUNTS_MAP)
        capacity = self.obj.map_max_entries(COUNTS_MAP)
        keys = np.zeros(capacity, dtype=self.key_dtype)
        values = np.zeros(capacity, dtype=np.uint64)
        got = self._lookup_batch(fd, keys, values)
        if got is None:
            got = self._lookup_each(fd, keys, values)
        return keys[:got], values[:got]

    @staticmethod
    def _lookup_batch(fd: int, keys: np.ndarray, values: np.ndarray) -> int | None:
        token_in, token_out = (C.c_uint8 * 64)(), (C.c_uint8 * 64)()
        total, first = 0, True
        while total < len(keys):
            count = C.c_uint32(len(keys) - total)
            rc = libbpf.map_lookup_batch(
                fd, None if first else C.byref(token_in), C.byref(token_out),
                keys[total:].ctypes.data, values[total:].ctypes.data, C.byref(count), None)
            err = C.get_errno()
            if rc and err != ENOENT:
                return None if first else total  # no batch support: the caller walks the keys
            total += count.value
            if rc:  # ENOENT: that was the last batch
                break
            C.memmove(token_in, token_out, 64)
            first = False
        return total

    @staticmethod
    def _lookup_each(fd: int, keys: np.ndarray, values: np.ndarray) -> int:
        cur, prev = np.zeros(1, dtype=keys.dtype), np.zeros(1, dtype=keys.dtype)
        have_prev, n = False, 0
        while n < len(keys) and libbpf.map_get_next_key(
                fd, prev.ctypes.data if have_prev else None, cur.ctypes.data) == 0:
            if libbpf.map_lookup_elem(fd, cur.ctypes.data, values[n:].ctypes.data) == 0:
                keys[n] = cur[0]
                n += 1
            prev[0] = cur[0]
            have_prev = True
        return n

    def read_stacks(self, ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Addresses of each stack id, innermost frame first."""
        fd = self.obj.map_fd(STACKS_MAP)
        buf = np.zeros(MAX_STACK_DEPTH, dtype=np.uint64)
        key = C.c_uint32()
        out = {}
        for sid in ids:
            if sid < 0:
                continue
            key.value = sid
            if libbpf.map_lookup_elem(fd, C.byref(key), buf.ctypes.data) == 0:
                depth = int(np.argmin(buf != 0)) if buf[-1] == 0 else MAX_STACK_DEPTH
                out[sid] = buf[:depth].copy()
        return out

    def add_mntns(self, mntns_ids: Iterable[int]) -> None:
        add_to_mntns_filter(self.obj, mntns_ids)

    def lost(self) -> int:
        """Samples that found the counts map full, all CPUs together."""
        return self.obj.percpu_total(LOST_MAP)

    def close(self) -> None:
        self._perf_fds = []
        self.obj.close()

    def __enter__(self) -> ProfileSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
