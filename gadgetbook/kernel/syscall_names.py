"""Syscall names by number for this machine's architecture, as libseccomp (libseccomp.so.2) names them:
the names container runtimes' seccomp profiles use."""

from __future__ import annotations

import ctypes as C
import functools


@functools.cache
def _libseccomp() -> tuple[C.CDLL, int] | None:
    try:
        lib = C.CDLL("libseccomp.so.2")
    except OSError:
        return None
    lib.seccomp_arch_native.restype = C.c_uint32
    lib.seccomp_syscall_resolve_num_arch.restype = C.c_void_p
    lib.seccomp_syscall_resolve_num_arch.argtypes = [C.c_uint32, C.c_int]
    return lib, lib.seccomp_arch_native()


_libc = C.CDLL(None)
_libc.free.argtypes = [C.c_void_p]


@functools.cache
def syscall_name(number: int) -> str:
    """read for 0 (on x86_64); "" for -1 (no syscall); syscall_N where libseccomp is missing or
    does not know the number."""
    if number < 0:
        return ""
    found = _libseccomp()
    if found is None:
        return f"syscall_{number}"
    lib, arch = found
    raw = lib.seccomp_syscall_resolve_num_arch(arch, int(number))
    if not raw:
        return f"syscall_{number}"
    try:
        return C.string_at(raw).decode()
    finally:
        _libc.free(raw)  # the caller frees the name, says libseccomp's manual
