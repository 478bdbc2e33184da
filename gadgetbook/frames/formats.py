"""Named formats that turn raw event fields into readable columns (errno names, IP addresses, flags)."""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Callable

import numpy as np

AF_INET, AF_INET6 = 2, 10

# Kernel-side values of the open(2) flags are the host's, as the os module has them.
_OPEN_FLAGS = [
    (name, getattr(os, name, 0))
    for name in (
        "O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_DSYNC",
        "O_ASYNC", "O_DIRECT", "O_DIRECTORY", "O_NOFOLLOW", "O_NOATIME", "O_CLOEXEC", "O_PATH",
    )
]
_IP_PROTOCOLS = {0: "", 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP", 136: "UDPLITE", 262: "MPTCP"}


def per_unique(values: np.ndarray, fn: Callable[[object], object], out: str = "O") -> np.ndarray:
    """Apply fn once per distinct value: formats cost little however many events share a value."""
    if len(values) == 0:
        return np.empty(0, dtype=out)
    uniques, inverse = np.unique(values, return_inverse=True)
    mapped = np.array([fn(u) for u in uniques.tolist()], dtype=out)
    return mapped[inverse.reshape(-1)]


def cstrings(values: np.ndarray) -> np.ndarray:
    """Char arrays cut at their first NUL: bpf_probe_read_*_str leaves older bytes after it."""
    n, width = len(values), values.dtype.itemsize
    raw = np.ascontiguousarray(values).view(np.uint8).reshape(n, width).copy()
    raw[np.maximum.accumulate(raw == 0, axis=1)] = 0
    return raw.view(f"S{width}").reshape(n)


def decode_cstrings(values: np.ndarray) -> np.ndarray:
    return per_unique(cstrings(values), lambda b: b.decode(errors="replace"))


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
        return str(ipaddress.IPv6Address(raw[:16]))
    return ""


def ip_addresses(families: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    """Addresses as strings from a family column and 16-byte address fields."""
    if len(families) == 0:
        return np.empty(0, dtype="O")
    keyed = np.empty(len(families), dtype=[("f", "<u2"), ("a", "V16")])
    keyed["f"] = families
    keyed["a"] = np.ascontiguousarray(addrs).view("V16").reshape(-1)
    uniques, inverse = np.unique(keyed, return_inverse=True)
    mapped = np.array([_ip(int(u["f"]), bytes(u["a"])) for u in uniques], dtype="O")
    return mapped[inverse.reshape(-1)]


def argv(raw: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """NUL-separated argument blocks as one space-separated string each."""
    out = np.empty(len(raw), dtype="O")
    for i, (block, size) in enumerate(zip(raw.tolist(), sizes.tolist())):
        out[i] = " ".join(a.decode(errors="replace") for a in block[:size].split(b"\0") if a)
    return out


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
        return per_unique(values, lambda v: {AF_INET: 4, AF_INET6: 6}.get(v, 0), out="u1")
    if fmt == "ip_protocol":
        return per_unique(values, lambda v: _IP_PROTOCOLS.get(v, str(v)))
    if fmt == "ip_address":
        return ip_addresses(events[col.options["family"]], values)
    if fmt == "bind_options":
        return per_unique(values, lambda v: ("R" if v & 1 else "") + ("r" if v & 2 else ""))
    if fmt == "argv":
        return argv(values, events[col.options.get("size", "args_size")])
    raise ValueError(f"unknown column format {fmt!r}")


FORMATS = ("errno", "open_flags", "octal", "bool", "address_family", "ip_protocol", "ip_address",
           "bind_options", "argv")
