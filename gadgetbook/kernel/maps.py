"""Reading whole BPF hash maps into numpy arrays: batched where the kernel allows, key by key where not."""

from __future__ import annotations

import ctypes as C
import errno

import numpy as np

from gadgetbook.errors import GadgetError
from gadgetbook.kernel import libbpf

_UNSUPPORTED = (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, 524)  # 524: ENOTSUPP, the kernel's own


class MapReader:
    """Every entry of one hash map as (keys, values) structured arrays; with `delete`, emptied as read."""

    def __init__(self, fd: int, capacity: int, key: np.dtype, value: np.dtype, *, delete: bool = False,
                 name: str = "map") -> None:
        self.fd = fd
        self.capacity = capacity
        self.delete = delete
        self.name = name
        self._keys = np.zeros(capacity, dtype=key)
        self._values = np.zeros(capacity, dtype=value)
        self._batched = True

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        if self._batched:
            got = self._read_batched()
            if got is not None:
                return self._keys[:got].copy(), self._values[:got].copy()
            self._batched = False  # an older kernel: one entry at a time from now on
        return self._read_each()

    def _read_batched(self) -> int | None:
        # One syscall reads (and deletes) a whole run of buckets straight into the arrays.
        call = libbpf.map_lookup_and_delete_batch if self.delete else libbpf.map_lookup_batch
        token_in, token_out = (C.c_uint8 * 64)(), (C.c_uint8 * 64)()
        total, first = 0, True
        while total < self.capacity:
            count = C.c_uint32(self.capacity - total)
            rc = call(self.fd, None if first else C.byref(token_in), C.byref(token_out),
                      self._keys[total:].ctypes.data, self._values[total:].ctypes.data, C.byref(count), None)
            err = C.get_errno() if rc else 0
            total += count.value
            if rc and err == errno.ENOENT:
                break  # every bucket visited
            if rc:
                if err in _UNSUPPORTED and first and total == 0:
                    return None
                raise GadgetError(f"Cannot read the {self.name} map: {libbpf.errno_message(err)}.")
            C.memmove(token_in, token_out, 64)
            first = False
        return total

    def _read_each(self) -> tuple[np.ndarray, np.ndarray]:
        keys, values = [], []
        cur = np.zeros(1, dtype=self._keys.dtype)
        prev = np.zeros(1, dtype=self._keys.dtype)
        value = np.zeros(1, dtype=self._values.dtype)
        have_prev = False
        while len(keys) < self.capacity and libbpf.map_get_next_key(
                self.fd, None if self.delete or not have_prev else prev.ctypes.data, cur.ctypes.data) == 0:
            if libbpf.map_lookup_elem(self.fd, cur.ctypes.data, value.ctypes.data) == 0:
                keys.append(cur.copy())
                values.append(value.copy())
            if self.delete:
                libbpf.map_delete_elem(self.fd, cur.ctypes.data)
            prev[0] = cur[0]
            have_prev = True
        if not keys:
            return np.empty(0, self._keys.dtype), np.empty(0, self._values.dtype)
        return np.concatenate(keys), np.concatenate(values)
