"""Kinds of gadget, each in one module; `kind_of(spec)` is the one place a spec's declared kind is read.

Adding a kind: a module here with a `Kind` subclass (columns, checks, its source on a host, its result),
registered in KINDS, plus its gadget folder under bpf/ whose gadget.toml says `kind = "NAME"`.
"""

from __future__ import annotations

import functools
import importlib

from gadgetbook.catalog.spec import GadgetSpec
from gadgetbook.errors import GadgetError
from gadgetbook.kinds.base import Kind

__all__ = ["KINDS", "Kind", "kind_of"]

# kind name -> "module:class", imported when first asked for (the terminal never imports pandas).
KINDS = {
    "trace": "gadgetbook.kinds.trace:TraceKind",
    "top": "gadgetbook.kinds.top:TopKind",
    "profile": "gadgetbook.kinds.profile:ProfileKind",
    "recorder": "gadgetbook.kinds.recorder:RecorderKind",
    "program": "gadgetbook.kinds.program:ProgramKind",
    "bcc": "gadgetbook.kinds.bcc:BccKind",
}


def _kind_class(name: str, what: str) -> type[Kind]:
    where = KINDS.get(name)
    if where is None:
        raise GadgetError(f"{what} is of the kind {name!r}, which this installation does not know; upgrade gadgetbook.")
    module, _, cls = where.partition(":")
    return getattr(importlib.import_module(module), cls)


@functools.cache
def kind_of(spec: GadgetSpec) -> Kind:
    """The kind a gadget declares, ready to answer for it."""
    return _kind_class(spec.kind, spec.name)(spec)


def recorded_kind(attrs: dict) -> Kind:
    """The kind of a recorded run, from its attrs: replay needs no gadget objects (Binder has none)."""
    from gadgetbook import catalog

    name = attrs.get("kind") or "trace"
    gadget = str(attrs.get("gadget", ""))
    try:
        spec = catalog.get(gadget)
    except GadgetError:
        spec = None  # recorded elsewhere: the kind builds the result from the frame alone
    if spec is not None and spec.kind == name:
        return kind_of(spec)
    return _kind_class(name, f"The recording of {gadget or 'a run'}")(spec)
