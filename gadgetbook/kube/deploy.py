"""`gadgetbook deploy | undeploy | status`: the node pods in a cluster, applied idempotently and waited for."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from gadgetbook.errors import GadgetError
from gadgetbook.kube import manifests
from gadgetbook.kube.api import DAEMONSET, NAMESPACE, NODE_LABELS, NODE_PORT, Kube, call, explain

Progress = Callable[[str], None]


def _apply(kube: Kube, obj: dict[str, Any]) -> str:
    """Create the object, or bring an existing one to this spec; returns what happened."""
    from kubernetes.client.exceptions import ApiException

    kind, name = obj["kind"], obj["metadata"]["name"]
    ns = obj["metadata"].get("namespace")
    fns = {
        "Namespace": (kube.core.create_namespace, kube.core.patch_namespace, False),
        "ServiceAccount": (kube.core.create_namespaced_service_account,
                           kube.core.patch_namespaced_service_account, True),
        "Secret": (kube.core.create_namespaced_secret, None, True),  # an existing token is kept
        "ClusterRole": (kube.rbac.create_cluster_role, kube.rbac.patch_cluster_role, False),
        "ClusterRoleBinding": (kube.rbac.create_cluster_role_binding, kube.rbac.patch_cluster_role_binding, False),
        "Role": (kube.rbac.create_namespaced_role, kube.rbac.patch_namespaced_role, True),
        # Replaced, not patched: a merge would keep fields this version dropped (an older exec readiness
        # probe next to the HTTP one is refused as two handlers).
        "DaemonSet": (kube.apps.create_namespaced_daemon_set, kube.apps.replace_namespaced_daemon_set, True),
    }
    create, patch, namespaced = fns[kind]
    doing = f"creating {kind.lower()} {name}"
    try:
        if namespaced:
            create(ns, obj, _request_timeout=15)
        else:
            create(obj, _request_timeout=15)
        return "created"
    except ApiException as exc:
        if exc.status != 409:
            raise explain(exc, doing) from None
    if patch is None:
        return "kept"
    args = (name, ns, obj) if namespaced else (name, obj)
    call(f"updating {kind.lower()} {name}", patch, *args)
    return "configured"


def deploy(kube: Kube, image: str = manifests.DEFAULT_IMAGE, wait: float = 180, progress: Progress = print,
           bcc: bool = False) -> dict:
    """Apply the manifests (twice is the same as once) and wait until every node pod is ready (`bcc`: pods
    that run %%bcc programs, from an image built with bcc)."""
    _wait_namespace_gone_if_terminating(kube, wait, progress)
    objs = manifests.objects(image, bcc)
    for obj in objs[:1] + [manifests.secret(secrets.token_hex(24))] + objs[1:]:
        what = _apply(kube, obj)
        progress(f"{obj['kind'].lower()}/{obj['metadata']['name']} {what}")
    return wait_ready(kube, wait, progress)


def _wait_namespace_gone_if_terminating(kube: Kube, wait: float, progress: Progress) -> None:
    """A namespace still being deleted (a recent undeploy) takes no new objects: wait for it to go."""
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + wait
    while True:
        try:
            ns = kube.core.read_namespace(NAMESPACE, _request_timeout=15)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise explain(exc, f"reading namespace {NAMESPACE}") from None
        if ns.metadata.deletion_timestamp is None:
            return
        if time.monotonic() > deadline:
            raise GadgetError(f"Namespace {NAMESPACE} is still being deleted after {wait:.0f}s; deploy again once "
                              "it is gone (`kubectl get namespace gadgetbook`).")
        progress(f"namespace/{NAMESPACE} is being deleted; waiting")
        time.sleep(1)


def wait_ready(kube: Kube, timeout: float, progress: Progress = print) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while True:
        ds = call(f"reading daemonset {NAMESPACE}/{DAEMONSET}", kube.apps.read_namespaced_daemon_set,
                  DAEMONSET, NAMESPACE)
        st = ds.status
        desired, ready = st.desired_number_scheduled or 0, st.number_ready or 0
        updated = st.updated_number_scheduled or 0
        line = f"node pods ready: {ready}/{desired}"
        if line != last:
            progress(line)
            last = line
        generation_seen = (st.observed_generation or 0) >= (ds.metadata.generation or 0)
        if desired and ready == desired and updated == desired and generation_seen:
            return {"desired": desired, "ready": ready}
        if time.monotonic() > deadline:
            raise GadgetError(f"Only {ready} of {desired} gadgetbook node pods became ready in {timeout:.0f}s; "
                              f"see `gadgetbook status` and the pods' events in namespace {NAMESPACE}.")
        time.sleep(1)


def undeploy(kube: Kube, wait: float = 120, progress: Progress = print) -> None:
    """Remove everything deploy made; waits until the namespace is gone."""
    from kubernetes.client.exceptions import ApiException

    deletes = {"ClusterRole": kube.rbac.delete_cluster_role,
               "ClusterRoleBinding": kube.rbac.delete_cluster_role_binding}
    steps = [(f"deleting {kind.lower()} {name}", deletes[kind], (name,)) for kind, name in manifests.CLUSTER_OBJECTS]
    for doing, fn, args in (
        *steps,
        (f"deleting namespace {NAMESPACE}", kube.core.delete_namespace, (NAMESPACE,)),
    ):
        try:
            fn(*args, _request_timeout=15)
            progress(doing.replace("deleting", "deleted"))
        except ApiException as exc:
            if exc.status != 404:
                raise explain(exc, doing) from None
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            kube.core.read_namespace(NAMESPACE, _request_timeout=15)
        except ApiException as exc:
            if exc.status == 404:
                progress("gadgetbook removed")
                return
            raise explain(exc, f"reading namespace {NAMESPACE}") from None
        time.sleep(1)
    raise GadgetError(f"Namespace {NAMESPACE} is still terminating after {wait:.0f}s; check it with kubectl.")


def status(kube: Kube) -> list[dict[str, Any]]:
    """One row per node pod: node, pod, ready, restarts, image, and what the node says of itself."""
    from gadgetbook.client.node_link import NodeLink
    from gadgetbook.kube.api import bearer_token
    from gadgetbook.kube.node_pods import node_pods
    from gadgetbook.kube.portforward import pod_connector

    ready = node_pods(kube)  # says clearly when nothing is deployed
    token = bearer_token(kube)
    pods = call(f"listing pods in namespace {NAMESPACE}", kube.core.list_namespaced_pod, NAMESPACE,
                label_selector=",".join(f"{k}={v}" for k, v in NODE_LABELS.items())).items
    rows = []
    for pod in pods:
        statuses = pod.status.container_statuses or []
        row = {
            "node": pod.spec.node_name,
            "pod": pod.metadata.name,
            "phase": pod.status.phase,
            "ready": pod.spec.node_name in ready and ready[pod.spec.node_name] == pod.metadata.name,
            "restarts": sum(s.restart_count for s in statuses),
            "image": statuses[0].image if statuses else pod.spec.containers[0].image,
        }
        if row["ready"]:
            try:
                facts = NodeLink(row["node"], pod_connector(kube, NAMESPACE, row["pod"], NODE_PORT), token).get("/node")
                row.update(kernel=facts["kernel"], btf=facts["btf"], bcc=bool(facts.get("bcc")),
                           version=facts["gadgetbook"])
            except GadgetError as exc:
                row["error"] = str(exc)
        rows.append(row)
    return rows
