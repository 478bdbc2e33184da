"""A gadget run across a cluster: one node session per node hosting a target pod, merged into one Run."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from gadgetbook.catalog.spec import GadgetSpec
from gadgetbook.client.node_link import REMOTE_COLUMNS, NodeLink, RemoteSource
from gadgetbook.errors import GadgetError
from gadgetbook.kinds import kind_of
from gadgetbook.kube.api import NAMESPACE, NODE_PORT, Kube, bearer_token
from gadgetbook.kube.node_pods import node_pods
from gadgetbook.kube.portforward import pod_connector
from gadgetbook.run_handle import Run
from gadgetbook.targets.kubernetes import PodQuery, PodTargets, gone_pods, is_node_pod, resolve, running_containers


def start_cluster(kube: Kube, spec: GadgetSpec, params: dict[str, Any], query: PodQuery, *,
                  timeout: float | None, ring_size: int | None = None, watch: bool = True,
                  host: bool = False, include_self: bool = False) -> Run:
    """Resolve pods, start the gadget on every node hosting one, and return the merged live Run.

    `host`: every process of the nodes (all of them, or `--node`'s), not pods; the node pods refuse it
    to whoever lacks the right to trace a whole host. `include_self`: gadgetbook's own pods count too."""
    kind = kind_of(spec)
    kind.check(params)  # bad settings fail here, before any node is asked
    pods_on = node_pods(kube)
    if host:
        targets = _host_targets(kube, query, pods_on)
        by_node = {n: None for n in ([query.node] if query.node else sorted(pods_on))}
    else:
        targets = resolve(kube, query, include_self=include_self)
        by_node = targets.by_node()
    missing = sorted(set(by_node) - set(pods_on))
    if missing and len(missing) == len(by_node):
        raise GadgetError(f"gadgetbook's node pod is not ready on {', '.join(missing)}; "
                          "deploy it with `gadgetbook deploy` (or `%gadget deploy`) and check `gadgetbook status`.")
    token = bearer_token(kube)
    peers = None
    if "daddr" in kind.columns():
        from gadgetbook.targets.pod_addresses import PodAddresses

        peers = PodAddresses(kube)
    cluster = ClusterSources(kube, spec, params, token, pods_on, ring_size, peers, include_self)
    sources, errors = cluster.open_many({n: by_node[n] for n in by_node if n in pods_on}, targets)
    if not sources:
        raise GadgetError("; ".join(f"{n}: {e}" for n, e in errors.items()))
    # Asked once the nodes have started: a bcc program's columns are known only once a node has compiled it.
    columns, schema = kind.columns(), kind.empty()
    if peers is not None:
        from gadgetbook.frames.coded import Coded

        columns = [*columns, *REMOTE_COLUMNS]
        schema = {**schema, **{c: Coded(np.empty(0, np.int32), np.empty(0, "O")) for c in REMOTE_COLUMNS}}
    if host:
        described = f"every process on {', '.join(sorted(by_node))}"
    else:
        described = "pods " + ", ".join(sorted({f"{c.namespace}/{c.pod}" for c in targets.containers}))
    run = Run(spec.name, params, sources, columns, timeout=timeout,
              targets=described, schema=schema,
              categorical=kind.categorical | (set(REMOTE_COLUMNS) if peers else set()), kind=kind)
    scope = "all namespaces" if query.all_namespaces else f"namespace {query.namespace or 'default'}"
    run.mode = f"cluster {kube.context_name or '(default context)'}, {scope}"
    run.exits = lambda: gone_pods(kube, query, targets)
    if peers is not None:
        run.inventory = peers  # the advisor and the talk graph name peers from it
    for node in missing:
        run.counters.errors[node] = "no gadgetbook node pod on this node"
    for node, err in errors.items():
        run.counters.errors[node] = err
    if watch and not host:
        cluster.watch(run, query, targets)
    return run


def _host_targets(kube: Kube, query: PodQuery, pods_on: dict[str, str]) -> PodTargets:
    """Pods on the nodes of a whole-host run, to name their rows; the caller may not see them all."""
    from gadgetbook.kube.api import call

    if query.node and query.node not in pods_on:
        raise GadgetError(f"gadgetbook's node pod is not ready on {query.node}; see `gadgetbook status`.")
    found = []
    try:
        kwargs = {"field_selector": f"spec.nodeName={query.node}"} if query.node else {}
        for pod in call("listing pods on the nodes", kube.core.list_pod_for_all_namespaces, **kwargs).items:
            found.extend(running_containers(pod))
    except GadgetError:
        pass  # rows keep their container's mount namespace; names are a courtesy
    return PodTargets(found)


class ClusterSources:
    """Opens node sessions, and adds pods that start during the run (to a live session or a new one)."""

    def __init__(self, kube: Kube, spec: GadgetSpec, params: dict[str, Any], token: str,
                 node_pods: dict[str, str], ring_size: int | None, peers=None, include_self: bool = False) -> None:
        self.kube = kube
        self.spec = spec
        self.params = params
        self.token = token
        self.node_pods = node_pods
        self.ring_size = ring_size
        self.peers = peers
        self.include_self = include_self
        self.by_node: dict[str, RemoteSource] = {}
        self.known: set[str] = set()

    def open(self, node: str, containers, names: dict) -> RemoteSource:
        link = NodeLink(node, pod_connector(self.kube, NAMESPACE, self.node_pods[node], NODE_PORT), self.token)
        start = {"gadget": self.spec.name, "params": self.params,
                 # None: every process of the node (a whole-host run)
                 "container_ids": None if containers is None else [c.container_id for c in containers],
                 **kind_of(self.spec).wire(node)}  # a program of one's own: its object, built for that node
        if self.include_self:
            start["include_self"] = True
        if self.ring_size:
            start["ring_size"] = self.ring_size
        src = RemoteSource(link, start, dict(names), peers=self.peers, spec=self.spec)
        self.by_node[node] = src
        self.known |= {c.container_id for c in containers or ()}
        return src

    def open_many(self, by_node: dict, targets: PodTargets) -> tuple[list[RemoteSource], dict[str, str]]:
        names = targets.names()
        errors: dict[str, str] = {}
        sources = []
        with ThreadPoolExecutor(max_workers=min(8, max(1, len(by_node)))) as pool:
            futures = {node: pool.submit(self.open, node, cs, names) for node, cs in by_node.items()}
            for node, fut in futures.items():
                try:
                    sources.append(fut.result())
                except GadgetError as exc:
                    errors[node] = str(exc)
        return sources, errors

    def watch(self, run: Run, query: PodQuery, targets: PodTargets) -> None:
        """Pods matching the query that start during the run join it; rows of pods that leave keep their names."""
        thread = threading.Thread(target=self._watch, args=(run, query), daemon=True,
                                  name="gadgetbook-pod-watch")
        thread.start()

    def _watch(self, run: Run, query: PodQuery) -> None:
        from kubernetes import watch

        kwargs = {"label_selector": query.selector} if query.selector else {}
        if query.node:
            kwargs["field_selector"] = f"spec.nodeName={query.node}"
        if query.all_namespaces:
            fn, args = self.kube.core.list_pod_for_all_namespaces, ()
        else:
            fn, args = self.kube.core.list_namespaced_pod, (query.namespace or "default",)
        w = watch.Watch()
        while run.running:
            try:
                for event in w.stream(fn, *args, timeout_seconds=5, **kwargs):
                    if not run.running:
                        break
                    pod = event["object"]
                    if query.podname and pod.metadata.name != query.podname:
                        continue
                    if is_node_pod(pod) and not self.include_self:
                        continue
                    fresh = [c for c in running_containers(pod, query.container) if c.container_id not in self.known]
                    if fresh:
                        self._join(run, fresh)
            except Exception as exc:  # noqa: BLE001 - the watch is best effort; the run goes on
                run.counters.errors.setdefault("pod-watch", str(exc))
                return
        w.stop()

    def _join(self, run: Run, fresh) -> None:
        names = {c.container_id: (c.namespace, c.pod, c.container) for c in fresh}
        for node in {c.node for c in fresh}:
            cs = [c for c in fresh if c.node == node]
            try:
                if node in self.by_node:
                    self.by_node[node].add_containers([c.container_id for c in cs], names)
                    self.known |= {c.container_id for c in cs}
                elif node in self.node_pods:
                    run.add_source(self.open(node, cs, names))
            except GadgetError as exc:
                run.counters.errors[node] = str(exc)

