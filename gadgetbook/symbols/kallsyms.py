"""Kernel symbols from /proc/kallsyms, looked up in bulk with a binary search over sorted addresses."""

from __future__ import annotations

import numpy as np

UNKNOWN = "[unknown]"


class KernelSymbols:
    """Function symbols of the running kernel and its modules."""

    def __init__(self, path: str = "/proc/kallsyms") -> None:
        addrs: list[int] = []
        names: list[str] = []
        with open(path) as f:
            for line in f:
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] in "tTwW":
                    addrs.append(int(parts[0], 16))
                    names.append(parts[2])
        order = np.argsort(np.array(addrs, dtype=np.uint64), kind="stable")
        self.addresses = np.array(addrs, dtype=np.uint64)[order]
        self.names = np.array(names, dtype=object)[order]
        # Without CAP_SYSLOG every address reads as 0: then nothing can be named.
        self.usable = bool(len(self.addresses)) and int(self.addresses[-1]) != 0

    def lookup(self, addresses: np.ndarray) -> np.ndarray:
        """Names for the addresses (object array); None where no symbol covers one."""
        addresses = np.asarray(addresses, dtype=np.uint64)
        out = np.full(len(addresses), None, dtype=object)
        if not self.usable or not len(addresses):
            return out
        i = np.searchsorted(self.addresses, addresses, side="right") - 1
        ok = i >= 0
        out[ok] = self.names[i[ok]]
        return out


_cached: KernelSymbols | None = None


def kernel_symbols() -> KernelSymbols:
    """The kernel's symbols, read once per process (modules loaded later are read on the next profile)."""
    global _cached
    if _cached is None:
        _cached = KernelSymbols()
    return _cached


def refresh() -> KernelSymbols:
    global _cached
    _cached = KernelSymbols()
    return _cached
