"""The plain Python API: `gadgetbook.run(...)` returns a DataFrame, `gadgetbook.start(...)` a live Run."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from gadgetbook import catalog
from gadgetbook.catalog.spec import GadgetSpec
from gadgetbook.errors import GadgetError
from gadgetbook.options import parse_duration, parse_size
from gadgetbook.run_handle import Run

_TARGET_KEYS = {"timeout", "pid", "container", "selector", "ring_size", "save", "local", "tail"}
_CLUSTER_KEYS = {"namespace", "all_namespaces", "podname", "node", "context", "kubeconfig", "host", "include_self"}
DEFAULT_TAIL_ROWS = 100_000


@dataclass
class Where:
    """Whom to trace and how, apart from any one gadget's params: the target and run keywords of `start`."""

    opts: dict[str, Any]
    kube_opts: dict[str, Any]

    @classmethod
    def split(cls, kwargs: dict[str, Any]) -> Where:
        """Take the target and run keywords out of `kwargs` (what is left are a gadget's params)."""
        return cls({k: kwargs.pop(k) for k in list(kwargs) if k in _TARGET_KEYS},
                   {k: kwargs.pop(k) for k in list(kwargs) if k in _CLUSTER_KEYS})

    @property
    def timeout(self) -> float | None:
        return parse_duration(self.opts.get("timeout"))

    @property
    def ring_bytes(self) -> int | None:
        return parse_size(self.opts["ring_size"]) if self.opts.get("ring_size") else None

    def check(self) -> None:
        """Refused at once, before anything loads: a run that could never trace anything (no such process), or
        whose recording could not be written."""
        if self.opts.get("pid") is not None:
            from gadgetbook.targets.local import check_pid

            check_pid(self.opts["pid"])
        if self.opts.get("save"):
            from gadgetbook.frames.recording import check_destination

            check_destination(self.opts["save"], folder=is_dataset_path(self.opts["save"]))

    def in_cluster(self) -> bool:
        if self.opts.get("local"):
            if self.kube_opts:
                raise GadgetError(f"--local traces this host; it does not go with {', '.join(sorted(self.kube_opts))}.")
            return False
        if self.kube_opts:
            return True
        from gadgetbook.kube.api import kubeconfig_path

        return kubeconfig_path() is not None and not self.opts.get("pid")


def start(gadget: str, **kwargs: Any) -> Run:
    """Start a gadget on this host and return the live Run (batches, counters, stop, result).

    Keywords: timeout (seconds or "10s"), pid, container (name), selector
    ("app=api"), ring_size, save (PATH.parquet: one file at the end; a folder:
    a Parquet dataset streamed while the run goes, of which only the newest
    `tail` rows stay in memory), and the gadget's own params (see `describe`).
    In a cluster (a kubeconfig is found, or any of namespace, all_namespaces,
    podname, node, context, kubeconfig, host is given, and not local=True) the
    targets are pods, traced on their nodes by gadgetbook's node pods; host=True
    traces every process of the nodes instead; include_self=True keeps
    gadgetbook's own node pods in the results.
    """
    spec = catalog.get(gadget)
    where = Where.split(kwargs)
    params = spec.checked_params(kwargs)
    return start_spec(spec, params, where)


def start_spec(spec: GadgetSpec, params: dict[str, Any], where: Where, kube=None) -> Run:
    """Start the gadget a spec describes (from the catalog, or a program of one's own) for these targets;
    `kube`, an API client the caller has connected already, makes it a cluster run."""
    where.check()
    if kube is not None or where.in_cluster():
        return start_in_cluster(spec, params, where, kube)
    from gadgetbook.targets.local import LocalContainers, resolve

    containers = LocalContainers()
    targets = resolve(containers, selector=where.opts.get("selector"), container=where.opts.get("container"),
                      pid=where.opts.get("pid"))
    return start_local(spec, params, where, containers, targets)


def start_local(spec: GadgetSpec, params: dict[str, Any], where: Where, containers, targets) -> Run:
    """One gadget on this host's resolved targets (several gadgets of an investigation share them)."""
    from gadgetbook.host_run import start_on_host

    check_save(spec, where.opts.get("save"))
    run = start_on_host(spec, params, mntns_ids=targets.mntns_ids, pid=where.opts.get("pid"),
                        ring_bytes=where.ring_bytes, containers=containers, node=socket.gethostname(),
                        timeout=where.timeout, targets=targets.description)
    run.exits = targets.gone
    return saved_as_asked(run, where)


def start_in_cluster(spec: GadgetSpec, params: dict[str, Any], where: Where, kube=None) -> Run:
    from gadgetbook.client.cluster import start_cluster
    from gadgetbook.kube.api import connect
    from gadgetbook.targets.kubernetes import PodQuery

    opts, kube_opts = where.opts, where.kube_opts
    if opts.get("pid"):
        raise GadgetError("--pid names a process on this host; use -p POD in a cluster, or add --local.")
    check_save(spec, opts.get("save"))
    kube = kube or connect(kube_opts.get("kubeconfig"), kube_opts.get("context"))
    query = PodQuery(namespace=kube_opts.get("namespace"), all_namespaces=bool(kube_opts.get("all_namespaces")),
                     podname=kube_opts.get("podname"), container=opts.get("container"),
                     selector=opts.get("selector"), node=kube_opts.get("node"))
    if kube_opts.get("host") and (opts.get("selector") or opts.get("container") or kube_opts.get("podname")):
        raise GadgetError("--host traces every process of the nodes; it does not go with -l, -c or -p.")
    run = start_cluster(kube, spec, params, query, timeout=where.timeout, ring_size=where.ring_bytes,
                        host=bool(kube_opts.get("host")), include_self=bool(kube_opts.get("include_self")))
    return saved_as_asked(run, where)


def is_dataset_path(path: str | None) -> bool:
    """--save PATH.parquet writes one file at the end; any other path is a folder streamed as a dataset."""
    return bool(path) and not str(path).endswith(".parquet")


def check_save(spec: GadgetSpec, path: str | None) -> None:
    from gadgetbook.kinds import kind_of

    if is_dataset_path(path) and "timestamp" not in kind_of(spec).columns():
        raise GadgetError(f"{spec.name}'s result has no timestamps to stream by; save it to one file with "
                          f"--save {path}.parquet.")
    if is_dataset_path(path):
        from pathlib import Path

        p = Path(path)
        if p.exists() and (not p.is_dir() or any(p.iterdir())):
            raise GadgetError(f"{p} exists and is not an empty folder; --save a dataset to a new folder.")


def saved_as_asked(run: Run, where: Where) -> Run:
    path = where.opts.get("save")
    if is_dataset_path(path):
        from gadgetbook.frames.dataset import DatasetWriter

        try:
            run.stream_to(DatasetWriter(path, run.columns, run.attrs()),
                          tail_rows=int(where.opts.get("tail") or DEFAULT_TAIL_ROWS))
        except BaseException:
            run.stop()
            raise
    else:
        run.save_path = path
    return run


def run(gadget: str, **kwargs: Any):
    """Run a gadget until its timeout (or Ctrl-C) and return the events as a pandas DataFrame
    (profile returns a Profile, whose `.samples` is its DataFrame)."""
    with start(gadget, **kwargs) as r:
        r.wait()
    result = r.conclude()
    if r.save_notice:  # the recording is not where it was asked: say where, beside the result's notes
        import warnings

        warnings.warn(r.save_notice, RuntimeWarning, stacklevel=2)
    return result
