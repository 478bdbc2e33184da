"""The plain Python API: `gadgetbook.run(...)` returns a DataFrame, `gadgetbook.start(...)` a live Run."""

from __future__ import annotations

import socket
from typing import Any

from gadgetbook import catalog
from gadgetbook.client.run import Run
from gadgetbook.errors import GadgetError
from gadgetbook.options import parse_duration, parse_size

_TARGET_KEYS = {"timeout", "pid", "container", "selector", "ring_size", "save"}


def start(gadget: str, **kwargs: Any) -> Run:
    """Start a gadget on this host and return the live Run (batches, counters, stop, result).

    Keywords: timeout (seconds or "10s"), pid, container (name), selector
    ("app=api"), ring_size, and the gadget's own params (see `describe`).
    """
    spec = catalog.get(gadget)
    opts = {k: kwargs.pop(k) for k in list(kwargs) if k in _TARGET_KEYS}
    unknown = set(kwargs) - set(spec.params)
    if unknown:
        known = ", ".join(sorted(spec.params)) or "none"
        raise GadgetError(f"{gadget} has no parameter {', '.join(sorted(unknown))}; its parameters: {known}.")
    params = {name: prm.check(kwargs.get(name, prm.default)) for name, prm in spec.params.items()}
    timeout = parse_duration(opts.get("timeout"))

    from gadgetbook.node.session import DEFAULT_RING_BYTES
    from gadgetbook.node.sources import open_local
    from gadgetbook.targets.local import LocalContainers, resolve

    containers = LocalContainers()
    targets = resolve(containers, selector=opts.get("selector"), container=opts.get("container"), pid=opts.get("pid"))
    node = socket.gethostname()
    source, decoder = open_local(
        spec, params, mntns_ids=targets.mntns_ids, pid=opts.get("pid"),
        ring_bytes=parse_size(opts.get("ring_size") or DEFAULT_RING_BYTES), containers=containers, node=node,
    )
    run = Run(spec.name, params, [source], decoder.names(), timeout=timeout, targets=targets.description,
              schema=decoder.empty(), categorical=decoder.categorical,
              result_type=getattr(decoder, "result_type", None))
    run.save_path = opts.get("save")
    return run


def run(gadget: str, **kwargs: Any):
    """Run a gadget until its timeout (or Ctrl-C) and return the events as a pandas DataFrame
    (profile returns a Profile, whose `.samples` is its DataFrame)."""
    with start(gadget, **kwargs) as r:
        r.wait()
    result = r.result()
    if getattr(r, "save_path", None):
        from gadgetbook.frames.recording import save

        save(r.frame(), r.save_path)
    if hasattr(result, "write_requested"):
        result.write_requested()  # files the gadget's own params asked for (profile --folded/--speedscope)
    return result
