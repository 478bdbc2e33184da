"""The plain Python API: `gadgetbook.run(...)` returns a DataFrame, `gadgetbook.start(...)` a live Run."""

from __future__ import annotations

import socket
from typing import Any

from gadgetbook import catalog
from gadgetbook.errors import GadgetError
from gadgetbook.options import parse_duration, parse_size
from gadgetbook.run_handle import Run

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
    opts, kube_opts, params = split_options(kwargs)
    return start_spec(spec, spec.checked_params(params), opts, kube_opts)


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Keywords as (target options, cluster options, the gadget's own params)."""
    opts = {k: v for k, v in kwargs.items() if k in _TARGET_KEYS}
    kube_opts = {k: v for k, v in kwargs.items() if k in _CLUSTER_KEYS}
    return opts, kube_opts, {k: v for k, v in kwargs.items() if k not in _TARGET_KEYS | _CLUSTER_KEYS}


def start_spec(spec, params: dict[str, Any], opts: dict[str, Any], kube_opts: dict[str, Any], kube=None) -> Run:
    """Start the gadget a spec describes (from the catalog, or a program of one's own) for these targets;
    `kube`, an API client already connected, when the caller has one."""
    timeout = parse_duration(opts.get("timeout"))
    if kube is not None or cluster_mode(opts, kube_opts):
        return _start_in_cluster(spec, params, opts, kube_opts, timeout, kube)

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


def cluster_mode(opts: dict[str, Any], kube_opts: dict[str, Any]) -> bool:
    if opts.get("local"):
        if kube_opts:
            raise GadgetError(f"--local traces this host; it does not go with {', '.join(sorted(kube_opts))}.")
        return False
    if kube_opts:
        return True
    from gadgetbook.kube.api import kubeconfig_path

    return kubeconfig_path() is not None and not opts.get("pid")


def _start_in_cluster(spec, params, opts, kube_opts, timeout, kube=None) -> Run:
    from gadgetbook.client.cluster import start_cluster
    from gadgetbook.kube.api import connect
    from gadgetbook.targets.kubernetes import PodQuery

    if opts.get("pid"):
        raise GadgetError("--pid names a process on this host; use -p POD in a cluster, or add --local.")
    kube = kube or connect(kube_opts.get("kubeconfig"), kube_opts.get("context"))
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
    return r.conclude()
