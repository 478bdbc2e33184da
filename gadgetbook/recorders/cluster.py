"""Recordings in a cluster: held by the node pods (which live as long as their pods), reached by
port-forward; `start` resolves the pods and asks each node that hosts one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gadgetbook.client.node_link import NodeLink
from gadgetbook.errors import GadgetError
from gadgetbook.recorders.client import RecorderLink


def _links(kube) -> tuple[dict[str, RecorderLink], list[str]]:
    from gadgetbook.kube.api import NAMESPACE, NODE_PORT, bearer_token
    from gadgetbook.kube.node_pods import node_pods
    from gadgetbook.kube.portforward import pod_connector

    pods = node_pods(kube)
    token = bearer_token(kube)  # the node checks who asks with it
    return {node: RecorderLink(NodeLink(node, pod_connector(kube, NAMESPACE, pod, NODE_PORT), token))
            for node, pod in pods.items()}, []


def node_links(kubeconfig: str | None, context: str | None) -> tuple[list[RecorderLink], list[str]]:
    from gadgetbook.kube.api import connect

    links, notes = _links(connect(kubeconfig, context))
    return list(links.values()), notes


def start_on_nodes(req, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Start the recording on every node hosting a selected pod; their facts."""
    from gadgetbook.kube.api import connect
    from gadgetbook.targets.kubernetes import PodQuery, resolve

    kube = connect(req.kubeconfig, req.context)
    query = PodQuery(namespace=req.namespace, all_namespaces=req.all_namespaces, podname=req.podname,
                     container=req.container, selector=req.selector, node=req.node)
    by_node = resolve(kube, query).by_node()
    links, _ = _links(kube)
    missing = sorted(set(by_node) - set(links))
    if missing:
        raise GadgetError(f"gadgetbook's node pod is not ready on {', '.join(missing)}; deploy it with "
                          "`gadgetbook deploy` and check `gadgetbook status`.")

    def start(node: str) -> dict[str, Any]:
        ids = {c.container_id: [c.namespace, c.pod, c.container] for c in by_node[node]}
        target = {**request["target"], "container_ids": ids}
        return links[node].start({**request, "target": target})

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(by_node)))) as pool:
        futures = {node: pool.submit(start, node) for node in by_node}
    infos, errors = [], []
    for node, fut in futures.items():
        try:
            infos.append(fut.result())
        except GadgetError as exc:
            errors.append(f"{node}: {exc}")
    if errors:
        for info in infos:
            try:
                links[info["node"]].stop(info["id"])  # all or nothing: no half-started recording stays
            except GadgetError:
                pass
        raise GadgetError("; ".join(errors))
    return infos


def why_missing(rid: str, kubeconfig: str | None, context: str | None) -> str:
    """A sentence when the recording's node pod went away after it began (its start time is in the id)."""
    from gadgetbook.kube.api import NAMESPACE, NODE_LABELS, call, connect

    try:
        began = int(rid.rsplit("-", 1)[-1][:-4], 16)
    except ValueError:
        return ""
    kube = connect(kubeconfig, context)
    selector = ",".join(f"{k}={v}" for k, v in NODE_LABELS.items())
    pods = call(f"listing pods in {NAMESPACE}", kube.core.list_namespaced_pod, NAMESPACE,
                label_selector=selector).items
    # Both times are whole seconds: a pod made in the second the recording began counts as after it.
    younger = [p for p in pods if p.metadata.creation_timestamp and p.metadata.creation_timestamp.timestamp() >= began]
    if not younger:
        return ""
    names = ", ".join(f"{p.spec.node_name} ({p.metadata.name})" for p in younger)
    return f" The node pod on {names} started after {rid} began: the recording ended with the pod that held it."
