"""A C library of the host (libbpf, libcap, libseccomp) opened through ctypes, or one sentence naming its package."""

from __future__ import annotations

import ctypes as C


def open_library(soname: str, package: str, error: type[Exception], use_errno: bool = False) -> C.CDLL:
    """The library `soname`; when the host lacks it, `error` saying which Debian package brings it."""
    try:
        return C.CDLL(soname, use_errno=use_errno)
    except OSError:
        raise error(f"{soname} was not found; install it (Debian: apt-get install {package}).") from None
