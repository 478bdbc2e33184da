"""Readable C++ and Rust function names: the toolchains' own demanglers through maintained libraries
(cxxfilt calls libstdc++'s abi::__cxa_demangle; rust-demangler reads Rust's legacy and v0 schemes)."""

from __future__ import annotations

import functools
import re

_RUST_HASH = re.compile(r"17h[0-9a-f]{16}E(?:\.|$)")  # the legacy Rust scheme's trailing hash segment
_HASH_SUFFIX = re.compile(r"::h[0-9a-f]{16}$")


@functools.cache
def _cxx():
    try:
        import cxxfilt

        return cxxfilt.demangle
    except Exception:  # no libstdc++ on this host: names stay as they are
        return None


@functools.cache
def _rust():
    try:
        import rust_demangler

        return rust_demangler.demangle
    except Exception:
        return None


def demangle(name: str) -> str:
    """The demangled name, or the name as it is when it is not mangled (or cannot be demangled)."""
    if not name.startswith("_Z") and not name.startswith("_R"):
        return name
    if name.startswith("_R") or _RUST_HASH.search(name):
        fn = _rust()
        if fn is not None:
            try:
                return _HASH_SUFFIX.sub("", fn(name))
            except Exception:  # noqa: S110 - not Rust after all: try C++
                pass
    if name.startswith("_Z"):
        fn = _cxx()
        if fn is not None:
            try:
                return fn(name)
            except Exception:
                return name
    return name
