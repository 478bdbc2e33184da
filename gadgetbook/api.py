"""The plain Python API: `gadgetbook.run(...)` returns a DataFrame, `gadgetbook.start(...)` a live Run."""

from __future__ import annotations

import socket
from typing import Any

from gadgetbook import catalog
from gadgetbook.errors import GadgetError
from gadgetbook.options import parse_duration, parse_size
from gadgetbook.run_handle import Run

_TARGET_KEYS = {"timeout", "pid", "container", "selector", "ring_size", "save", "local"}
_CLUSTER_KEYS = {"namespace", "all_namespaces", "podname", "node", "context", "kubeconfig", "host", "include_self"}


def start(gadget: str, **kwargs: Any) -> Run:
    """Start a gadget on this host and return the live Run (batches, counters, stop, result).

    Keywords: timeout (seconds or "10s"), pid, container (name), selector
    ("app=api"), ring_size, and the gadget's own params (see `describe`).
    In a cluster (a kubeconfig is found, or any of namespace, all_namespaces,
    podname, node, context, kubeconfig, host is given, and not local=True) the
    targets are pods, traced on their nodes by gadgetbook's node pods; host=True
    traces every process of the nodes instead; include_self=True keeps
    gadgetbook's own node pods in the results.
    """
    spec = catalog.get(gadget)
    opts = {k: kwargs.pop(k) for k in list(kwargs) if k in _TARGET_KEYS}
    kube_opts = {k: kwargs.pop(k) for k in list(kwargs) if k in _CLUSTER_KEYS}
    params = spec.checked_params(kwargs)
    timeout = parse_duration(opts.get("timeout"))
    if _cluster_mode(opts, kube_opts):
        return _start_in_cluster(spec, params, opts, kube_opts, timeout)

    from gadgetbook.host_run import start_on_host
    from gadgetbook.targets.local import LocalContainers, resolve

    containers = LocalContainers()
    targets = resolve(containers, selector=opts.get("selector"), container=opts.get("container"), pid=opts.get("pid"))
    run = start_on_host(spec, params, mntns_ids=targets.mntns_ids, pid=opts.get("pid"),
                        ring_bytes=parse_size(opts["ring_size"]) if opts.get("ring_size") else None,
                        containers=containers, node=socket.gethostname(), timeout=timeout,
                        targets=targets.description)
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
    if kube_opts.get("host") and (opts.get("selector") or opts.get("container") or kube_opts.get("podname")):
        raise GadgetError("--host traces every process of the nodes; it does not go with -l, -c or -p.")
    run = start_cluster(kube, spec, params, query, timeout=timeout, ring_size=ring,
                        host=bool(kube_opts.get("host")), include_self=bool(kube_opts.get("include_self")))
    run.save_path = opts.get("save")
    return run


def run(gadget: str, **kwargs: Any):
    """Run a gadget until its timeout (or Ctrl-C) and return the events as a pandas DataFrame
    (profile returns a Profile, whose `.samples` is its DataFrame)."""
    with start(gadget, **kwargs) as r:
        r.wait()
    return r.conclude()
