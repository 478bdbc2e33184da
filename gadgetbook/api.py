"""The plain Python API: `gadgetbook.run(...)` returns a DataFrame, `gadgetbook.start(...)` a live Run."""

from __future__ import annotations

import socket
from typing import Any

from gadgetbook import catalog
from gadgetbook.client.run import Run
from gadgetbook.errors import GadgetError
from gadgetbook.options import parse_duration, parse_size

_TARGET_KEYS = {"timeout", "pid", "container", "selector", "ring_size", "save", "local"}
_CLUSTER_KEYS = {"namespace", "all_namespaces", "podname", "node", "context", "kubeconfig"}


def start(gadget: str, **kwargs: Any) -> Run:
    """Start a gadget on this host and return the live Run (batches, counters, stop, result).

    Keywords: timeout (seconds or "10s"), pid, container (name), selector
    ("app=api"), ring_size, and the gadget's own params (see `describe`).
    In a cluster (a kubeconfig is found, or any of namespace, all_namespaces,
    podname, node, context, kubeconfig is given, and not local=True) the
    targets are pods, traced on their nodes by gadgetbook's node pods.
    """
    spec = catalog.get(gadget)
    opts = {k: kwargs.pop(k) for k in list(kwargs) if k in _TARGET_KEYS}
    kube_opts = {k: kwargs.pop(k) for k in list(kwargs) if k in _CLUSTER_KEYS}
    unknown = set(kwargs) - set(spec.params)
    if unknown:
        known = ", ".join(sorted(spec.params)) or "none"
        raise GadgetError(f"{gadget} has no parameter {', '.join(sorted(unknown))}; its parameters: {known}.")
    params = {name: prm.check(kwargs.get(name, prm.default)) for name, prm in spec.params.items()}
    timeout = parse_duration(opts.get("timeout"))
    if _cluster_mode(opts, kube_opts):
        return _start_in_cluster(spec, params, opts, kube_opts, timeout)

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


def _cluster_mode(opts: dict[str, Any], kube_opts: dict[str, Any]) -> bool:
    if opts.get("local"):
        if kube_opts:
            raise GadgetError(f"--local traces this host; it does not go with {', '.join(sorted(kube_opts))}.")
        return False
    if kube_opts:
        return True
    from gadgetbook.kube.api import kubeconfig_path

    return kubeconfig_path() is not None and not opts.get("pid")


def _start_in_cluster(spec, params, opts, kube_opts, timeout) -> Run:
    from gadgetbook.client.cluster import start_cluster
    from gadgetbook.kube.api import connect
    from gadgetbook.targets.kubernetes import PodQuery

    if opts.get("pid"):
        raise GadgetError("--pid names a process on this host; use -p POD in a cluster, or add --local.")
    kube = connect(kube_opts.get("kubeconfig"), kube_opts.get("context"))
    query = PodQuery(namespace=kube_opts.get("namespace"), all_namespaces=bool(kube_opts.get("all_namespaces")),
                     podname=kube_opts.get("podname"), container=opts.get("container"),
                     selector=opts.get("selector"), node=kube_opts.get("node"))
    ring = parse_size(opts["ring_size"]) if opts.get("ring_size") else None
    run = start_cluster(kube, spec, params, query, timeout=timeout, ring_size=ring)
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
