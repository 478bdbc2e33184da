"""Finding gadgetbook's node pods and their API token in a cluster."""

from __future__ import annotations

from gadgetbook.errors import GadgetError
from gadgetbook.kube.api import DAEMONSET, NAMESPACE, NODE_LABELS, Kube, call


def _selector() -> str:
    return ",".join(f"{k}={v}" for k, v in NODE_LABELS.items())


def node_pods(kube: Kube) -> dict[str, str]:
    """node name -> name of its ready gadgetbook node pod."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    from gadgetbook.kube.api import explain

    try:
        kube.apps.read_namespaced_daemon_set(DAEMONSET, NAMESPACE, _request_timeout=15)
    except ApiException as exc:
        if exc.status == 404:
            raise GadgetError("gadgetbook is not deployed in this cluster; run `gadgetbook deploy` "
                              "(or `%gadget deploy`) first.") from None
        raise explain(exc, f"reading daemonset {NAMESPACE}/{DAEMONSET}") from None
    except (Urllib3Error, OSError) as exc:
        raise explain(exc, f"reading daemonset {NAMESPACE}/{DAEMONSET}") from None
    pods = call(f"listing pods in namespace {NAMESPACE}", kube.core.list_namespaced_pod, NAMESPACE,
                label_selector=_selector()).items
    ready = {}
    for pod in pods:
        conditions = {c.type: c.status for c in (pod.status.conditions or [])}
        alive = pod.metadata.deletion_timestamp is None
        if pod.status.phase == "Running" and conditions.get("Ready") == "True" and alive:
            ready[pod.spec.node_name] = pod.metadata.name
    return ready
