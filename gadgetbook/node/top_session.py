"""One "top" gadget running on this host: load with filters, then read and clear its aggregation map on demand."""

from __future__ import annotations

import ctypes as C
import errno
from collections.abc import Iterable
from typing import Any

import numpy as np

from gadgetbook.catalog.spec import GadgetSpec
from gadgetbook.errors import GadgetError
from gadgetbook.kernel import libbpf
from gadgetbook.kernel.loader import BpfObject, LoadPlan
from gadgetbook.node.session import EVENTS_MAP, add_to_mntns_filter, check_privileges

TOP_MAP, TOP_LOST_MAP = "gadget_top", "gadget_top_lost"
_SMALLEST_RING = 4096  # the shared header's ring buffer goes unused by top gadgets


class TopSession:
    """A top gadget loaded and attached on this host until `close()`; `drain()` empties its map."""

    def __init__(self, spec: GadgetSpec, params: dict[str, Any], *, mntns_ids: Iterable[int] | None = None,
                 pid: int | None = None) -> None:
        check_privileges()
        self.spec = spec
        self.layout = spec.top_layout
        rodata: dict[str, int | bool] = spec.rodata(params)
        rodata["gadget_filter_by_mntns"] = mntns_ids is not None
        rodata["gadget_filter_pid"] = pid or 0
        plan = LoadPlan(groups=spec.hooks, rodata=rodata, max_entries={EVENTS_MAP: _SMALLEST_RING})
        self.obj = BpfObject(str(spec.object_path), plan, attach=False)
        try:
            if mntns_ids is not None:
                add_to_mntns_filter(self.obj, mntns_ids)
            self._fd = self.obj.map_fd(TOP_MAP)
            self._capacity = self.obj.map_max_entries(TOP_MAP)
            self._keys = np.zeros(self._capacity, dtype=self.layout.key)
            self._values = np.zeros(self._capacity, dtype=self.layout.value)
            self._batch = C.create_string_buffer(max(8, self.layout.key.itemsize))
            self._batch_ok = True
            self.obj._attach_all(plan.groups)
        except BaseException:
            self.obj.close()
            raise

    def drain(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys, values) of every entry, removed from the map as they are read."""
        if self._batch_ok:
            try:
                return self._drain_batched()
            except _BatchUnsupported:
                self._batch_ok = False  # an older kernel: one entry at a time
        return self._drain_one_by_one()

    def _drain_batched(self) -> tuple[np.ndarray, np.ndarray]:
        # One syscall reads and deletes a whole run of buckets straight into numpy arrays.
        total = 0
        in_batch = None
        while total < self._capacity:
            count = C.c_uint32(self._capacity - total)
            rc = libbpf.map_lookup_and_delete_batch(
                self._fd, in_batch, self._batch,
                self._keys[total:].ctypes.data, self._values[total:].ctypes.data, C.byref(count), None)
            err = C.get_errno() if rc else 0
            total += count.value
            if rc and err == errno.ENOENT:
                break  # every bucket visited
            if rc:
                if err in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, 524) and total == 0:
                    raise _BatchUnsupported()
                raise GadgetError(f"Cannot read {self.spec.name}'s map: {libbpf.errno_message(err)}.")
            in_batch = self._batch
        return self._keys[:total].copy(), self._values[:total].copy()

    def _drain_one_by_one(self) -> tuple[np.ndarray, np.ndarray]:
        keys = []
        key = np.zeros(1, dtype=self.layout.key)
        value = np.zeros(1, dtype=self.layout.value)
        while libbpf.map_get_next_key(self._fd, None, key.ctypes.data) == 0 and len(keys) < self._capacity:
            if libbpf.map_lookup_elem(self._fd, key.ctypes.data, value.ctypes.data) == 0:
                keys.append((key.copy(), value.copy()))
            libbpf.map_delete_elem(self._fd, key.ctypes.data)
        if not keys:
            return np.empty(0, self.layout.key), np.empty(0, self.layout.value)
        return np.concatenate([k for k, _ in keys]), np.concatenate([v for _, v in keys])

    def add_mntns(self, mntns_ids: Iterable[int]) -> None:
        add_to_mntns_filter(self.obj, mntns_ids)

    def lost(self) -> int:
        """Connections that found the map full, all CPUs together."""
        return self.obj.percpu_total(TOP_LOST_MAP)

    def close(self) -> None:
        self.obj.close()

    def __enter__(self) -> TopSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _BatchUnsupported(Exception):
    """The kernel has no batched lookup-and-delete for this map."""
