"""The gadget catalog: every gadget's spec, found beside its compiled object in the package."""

from __future__ import annotations

import functools
from pathlib import Path

from gadgetbook.catalog.spec import Column, GadgetSpec, Param, load_spec
from gadgetbook.errors import GadgetError

OBJECT_DIR = Path(__file__).resolve().parent.parent / "_bpf"

__all__ = ["Column", "GadgetSpec", "Param", "get", "names"]


@functools.cache
def _specs() -> dict[str, GadgetSpec]:
    specs = {}
    for toml in sorted(OBJECT_DIR.glob("*.toml")):
        spec = load_spec(toml)
        specs[spec.name] = spec
    return specs


def names() -> list[str]:
    """Names of the gadgets this installation carries."""
    return sorted(_specs())


def get(name: str) -> GadgetSpec:
    """The spec of one gadget, or a GadgetError that lists the known ones."""
    specs = _specs()
    if not specs:
        raise GadgetError(f"No gadget objects were found in {OBJECT_DIR}; build them with `make -C bpf`.")
    if name not in specs:
        from gadgetbook.hints import did_you_mean

        raise GadgetError(f"Unknown gadget {name!r}.{did_you_mean(name, specs)} "
                          f"Known gadgets: {', '.join(sorted(specs))}.")
    return specs[name]
