"""Named formats that turn raw event fields into readable columns (errno names, IP addresses, flags)."""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Callable

import numpy as np

from gadgetbook.frames.coded import Coded, coded, factorize, factorize_rows

AF_INET, AF_INET6 = 2, 10

# Kernel-side values of the open(2) flags are the host's, as the os module has them.
_OPEN_FLAGS = [
    (name, getattr(os, name, 0))
    for name in (
        "O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_DSYNC",
        "O_ASYNC", "O_DIRECT", "O_DIRECTORY", "O_NOFOLLOW", "O_NOATIME", "O_CLOEXEC", "O_PATH",
    )
]
_TCP_EVENT_TYPES = {1: "connect", 2: "accept", 3: "close"}
_DIRECTIONS = {1: "sent", 2: "received"}
_IP_PROTOCOLS = {0: "", 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP", 136: "UDPLITE", 262: "MPTCP"}


def per_unique(values: np.ndarray, fn: Callable[[object], object]) -> Coded:
    """Apply fn once per distinct value: formats cost little however many events share a value."""
    return coded(values, fn)


def per_unique_numeric(values: np.ndarray, fn: Callable[[object], object], out: str) -> np.ndarray:
    codes, uniques = factorize(values)
    return np.array([fn(u) for u in uniques.tolist()], dtype=out)[codes]


def cstrings(values: np.ndarray) -> np.ndarray:
    """Char arrays cut at their first NUL: bpf_probe_read_*_str leaves older bytes after it."""
    n, width = len(values), values.dtype.itemsize
    raw = np.array(values, order="C").view(np.uint8).reshape(n, width)
    # In slices: the masks of a whole batch of 256-byte paths would triple its memory.
    for start in range(0, n, 8192):
        part = raw[start:start + 8192]
        part[np.maximum.accumulate(part == 0, axis=1)] = 0
    return raw.view(f"S{width}").reshape(n)


def decode_cstrings(values: np.ndarray, padded: bool = False) -> Coded:
    """Char arrays as text; `padded` when the kernel zero-fills after the NUL (task comm)."""
    return per_unique(values if padded else cstrings(values), lambda b: b.decode(errors="replace"))


def errno_name(value: int) -> str:
    if not value:
        return ""
    return errno.errorcode.get(abs(value), f"E{abs(value)}")


def open_flags(value: int) -> str:
    names = [("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")[value & 3]]
    sync, tmpfile = getattr(os, "O_SYNC", 0), getattr(os, "O_TMPFILE", 0)
    for name, bit in _OPEN_FLAGS:
        # O_SYNC and O_TMPFILE include another flag's bit: name the larger one.
        if name == "O_DSYNC" and sync and value & sync == sync:
            name = "O_SYNC"
        if name == "O_DIRECTORY" and tmpfile and value & tmpfile == tmpfile:
            name = "O_TMPFILE"
        if bit and value & bit == bit:
            names.append(name)
    return "|".join(names)


def _ip(family: int, raw: bytes) -> str:
    if family == AF_INET:
        return str(ipaddress.IPv4Address(raw[:4]))
    if family == AF_INET6:
        addr = ipaddress.IPv6Address(raw[:16])
        # IPv4 on an IPv6 socket (::ffff:10.0.0.1) is written as IPv4: one connection reads alike on both sides.
        return str(addr.ipv4_mapped) if addr.ipv4_mapped else str(addr)
    return ""


def ip_addresses(families: np.ndarray, addrs: np.ndarray) -> Coded:
    """Addresses as strings from a family column and 16-byte address fields."""
    codes, first = factorize_rows(families, addrs)
    fam, raw = families[first].tolist(), np.ascontiguousarray(addrs[first]).view("V16").reshape(-1).tolist()
    return coded(np.arange(len(first)), lambda i: _ip(fam[i], raw[i])).take(codes)


def argv(raw: np.ndarray, sizes: np.ndarray) -> Coded:
    """NUL-separated argument blocks as one space-separated string each."""
    out = np.empty(len(raw), dtype="O")
    for i, (block, size) in enumerate(zip(raw.tolist(), sizes.tolist())):
        out[i] = " ".join(a.decode(errors="replace") for a in block[:size].split(b"\0") if a)
    return coded(out.astype("U"), str) if len(out) else Coded(np.empty(0, np.int32), np.empty(0, "O"))


def format_column(events: np.ndarray, col) -> np.ndarray:
    """The column's values from the raw events, as its format says."""
    values = events[col.field]
    fmt = col.format
    if fmt is None:
        if values.dtype.kind == "S":
            return decode_cstrings(values)
        return values
    if fmt == "errno":
        return per_unique(values, errno_name)
    if fmt == "open_flags":
        return per_unique(values, open_flags)
    if fmt == "octal":
        return per_unique(values, lambda v: f"{v:04o}" if v else "")
    if fmt == "bool":
        return values.astype(bool)
    if fmt == "address_family":
        return per_unique_numeric(values, lambda v: {AF_INET: 4, AF_INET6: 6}.get(v, 0), out="u1")
    if fmt == "ip_protocol":
        return per_unique(values, lambda v: _IP_PROTOCOLS.get(v, str(v)))
    if fmt == "ip_address":
        return ip_addresses(events[col.options["family"]], values)
    if fmt == "bind_options":
        return per_unique(values, lambda v: ("R" if v & 1 else "") + ("r" if v & 2 else ""))
    if fmt == "tcp_event_type":
        return per_unique(values, lambda v: _TCP_EVENT_TYPES.get(v, str(v)))
    if fmt == "argv":
        return argv(values, events[col.options.get("size", "args_size")])
    if fmt == "capability":
        from gadgetbook.kernel.capability_names import capability_name

        return per_unique(values, capability_name)
    if fmt == "cap_verdict":
        return per_unique(values, lambda v: "allowed" if v == 0 else "denied")
    if fmt == "cap_audit":
        from gadgetbook.frames.cap_stacks import audited

        return audited(values, events[col.options["stack"]])
    if fmt == "cap_caller":
        from gadgetbook.frames.cap_stacks import callers

        return callers(values)
    if fmt == "syscall":
        from gadgetbook.kernel.syscall_names import syscall_name

        return per_unique(values, syscall_name)
    if fmt == "duration":  # nanoseconds; 0 means none
        out = values.astype("<i8").view("timedelta64[ns]").copy()
        out[values == 0] = np.timedelta64("NaT")
        return out
    if fmt == "direction":
        return per_unique(values, lambda v: _DIRECTIONS.get(v, str(v)))
    if fmt in EXPANDING:
        return EXPANDING[fmt].decode(events, col)
    raise ValueError(f"unknown column format {fmt!r}")


class Expanding:
    """A format that makes several columns of one raw field: their names, docs and categoricals, and the decoder."""

    def __init__(self, module: str) -> None:
        self.module = module

    @property
    def _m(self):
        import importlib

        return importlib.import_module(self.module)

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        return self._m.COLUMNS

    @property
    def categorical(self) -> frozenset[str]:
        return self._m.CATEGORICAL

    def decode(self, events: np.ndarray, col) -> dict:
        return self._m.dns_columns(events, col)


EXPANDING = {"dns_message": Expanding("gadgetbook.frames.dns")}
FORMATS = ("errno", "open_flags", "octal", "bool", "address_family", "ip_protocol", "ip_address",
           "bind_options", "argv", "tcp_event_type", "duration", "direction", "capability", "cap_verdict",
           "cap_audit", "cap_caller", "syscall", *EXPANDING)
