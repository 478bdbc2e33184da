"""Capability numbers and their CAP_* names, as the system's libcap (libcap.so.2) knows them."""

from __future__ import annotations

import ctypes as C
import functools

from gadgetbook.errors import GadgetError
from gadgetbook.kernel.system_library import open_library

MAX_CAPABILITY = 63  # the kernel keeps capabilities in one 64-bit set


@functools.cache
def _libcap() -> C.CDLL:
    lib = open_library("libcap.so.2", "libcap2", GadgetError)
    lib.cap_to_name.restype = C.c_void_p
    lib.cap_to_name.argtypes = [C.c_int]
    lib.cap_free.argtypes = [C.c_void_p]
    lib.cap_from_name.restype = C.c_int
    lib.cap_from_name.argtypes = [C.c_char_p, C.POINTER(C.c_int)]
    lib.cap_max_bits.restype = C.c_int
    return lib


@functools.cache
def capability_name(number: int) -> str:
    """CAP_CHOWN for 0; CAP_UNKNOWN_N for a number this libcap does not name (a newer kernel's)."""
    lib = _libcap()
    raw = lib.cap_to_name(int(number))
    if not raw:
        return f"CAP_UNKNOWN_{number}"
    try:
        name = C.string_at(raw).decode()
    finally:
        lib.cap_free(raw)
    return f"CAP_UNKNOWN_{number}" if name.isdigit() else name.upper()


def known_names() -> list[str]:
    """Every capability name libcap knows, in number order."""
    return [capability_name(n) for n in range(_libcap().cap_max_bits())]


def capability_number(name: str) -> int:
    """The number of CAP_CHOWN, cap_chown or chown; a GadgetError in one sentence for any other word."""
    word = str(name).strip()
    bare = word.upper().removeprefix("CAP_")
    number = C.c_int()
    if bare and not bare.isdigit() and _libcap().cap_from_name(f"cap_{bare.lower()}".encode(), C.byref(number)) == 0:
        return number.value
    raise GadgetError(f"{word!r} is not a capability name; use names such as CAP_CHOWN or NET_BIND_SERVICE "
                      f"(known: {', '.join(n.removeprefix('CAP_') for n in known_names())}).")


def capability_numbers(names: str | list[str] | tuple[str, ...]) -> list[int]:
    """Numbers of comma-separated (or listed) capability names, each checked."""
    words = names.split(",") if isinstance(names, str) else list(names)
    return [capability_number(w) for w in words if str(w).strip()]


def capability_mask(names: str | list[str] | tuple[str, ...]) -> int:
    """One bit per named capability (0 when none is named: every capability)."""
    mask = 0
    for n in capability_numbers(names):
        mask |= 1 << n
    return mask


def bare_name(name: str) -> str:
    """CAP_NET_BIND_SERVICE as Kubernetes and podman write it: NET_BIND_SERVICE."""
    return name.removeprefix("CAP_")
