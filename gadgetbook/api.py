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

    from gadgetbook.frames.decode import Decoder
    from gadgetbook.node.local_source import LocalSource
    from gadgetbook.node.session import DEFAULT_RING_BYTES, TraceSession
    from gadgetbook.targets.local import LocalContainers
    from gadgetbook.targets.selector import Selector

    containers = LocalContainers()
    mntns_ids, targets = None, "this host"
    if opts.get("selector") or opts.get("container"):
        selector = Selector.parse(opts["selector"]) if opts.get("selector") else None
        chosen = containers.select(selector, opts.get("container"))
        wanted = " and ".join(
            f"{flag} {opts[k]}" for k, flag in (("selector", "-l"), ("container", "-c")) if opts.get(k)
        )
        if not chosen:
            raise GadgetError(f"No running container on this host matches {wanted}; nothing was traced.")
        mntns_ids = {m for c in chosen for m in c.mntns_ids}
        targets = f"containers {', '.join(sorted(c.name for c in chosen))}"
    if opts.get("pid"):
        targets = f"pid {opts['pid']}"
    session = TraceSession(
        spec, params, mntns_ids=mntns_ids, pid=opts.get("pid"),
        ring_bytes=parse_size(opts.get("ring_size") or DEFAULT_RING_BYTES),
    )
    node = socket.gethostname()
    decoder = Decoder(spec, node, containers)
    run = Run(spec.name, params, [LocalSource(session, decoder, node)], decoder.names(),
              timeout=timeout, targets=targets, schema=decoder.empty(), categorical=decoder.categorical)
    run.save_path = opts.get("save")
    return run


def run(gadget: str, **kwargs: Any):
    """Run a gadget until its timeout (or Ctrl-C) and return the events as a pandas DataFrame."""
    with start(gadget, **kwargs) as r:
        r.wait()
    df = r.result()
    if getattr(r, "save_path", None):
        from gadgetbook.frames.recording import save

        save(df, r.save_path)
    return df
