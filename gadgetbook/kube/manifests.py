"""The objects `gadgetbook deploy` applies, declared once (images/k8s/gadgetbook.yaml is printed from here)."""

from __future__ import annotations

from typing import Any

from gadgetbook.kube.api import DAEMONSET, NAMESPACE, NODE_LABELS, NODE_PORT, SECRET

DEFAULT_IMAGE = "localhost/gadgetbook-node:0.1.0"
MANAGED = {"app.kubernetes.io/part-of": "gadgetbook"}


def _meta(name: str, namespaced: bool = True, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**MANAGED, **(labels or {})}}
    if namespaced:
        meta["namespace"] = NAMESPACE
    return meta


def objects(image: str = DEFAULT_IMAGE) -> list[dict[str, Any]]:
    """Namespace, node ServiceAccount (no API rights), user roles, and the node DaemonSet."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NAMESPACE, namespaced=False)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("gadgetbook-node"),
         "automountServiceAccountToken": False},
        # What a user of gadgetbook needs, to bind to people or groups (see images/k8s/RBAC.md).
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": _meta("gadgetbook-user", namespaced=False),
         "rules": [
             # find the pods to trace, in any namespace the user may target, and follow new ones
             {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta("gadgetbook-user"),
         "rules": [
             # see that the node pods are deployed and ready
             {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get"]},
             {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
             # reach a node pod's API through the API server
             {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]},
             # the token the node API asks for
             {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [SECRET], "verbs": ["get"]},
         ]},
        daemonset(image),
    ]


def daemonset(image: str) -> dict[str, Any]:
    env = [
        {"name": "GADGETBOOK_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "GADGETBOOK_TOKEN", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "token"}}},
        {"name": "GADGETBOOK_PORT", "value": str(NODE_PORT)},
        # Busy runs allocate and free large batches on three threads: fewer malloc arenas and Arrow
        # on the system allocator give the memory back instead of keeping a high-water mark.
        {"name": "MALLOC_ARENA_MAX", "value": "2"},
        {"name": "ARROW_DEFAULT_MEMORY_POOL", "value": "system"},
    ]
    container = {
        "name": "node",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["gadgetbook-node"],
        "env": env,
        # Loading BPF programs, reading every process's /proc and mounting tracefs.
        "securityContext": {"privileged": True},
        "readinessProbe": {"exec": {"command": ["gadgetbook-node", "check"]}, "periodSeconds": 5,
                           "timeoutSeconds": 5},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}},
        "volumeMounts": [{"name": "bpffs", "mountPath": "/sys/fs/bpf"}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta(DAEMONSET, labels=NODE_LABELS),
        "spec": {
            "selector": {"matchLabels": dict(NODE_LABELS)},
            "template": {
                "metadata": {"labels": {**MANAGED, **NODE_LABELS}},
                "spec": {
                    "serviceAccountName": "gadgetbook-node",
                    "automountServiceAccountToken": False,
                    "hostPID": True,  # the node's processes, for container -> mount namespace
                    "tolerations": [{"operator": "Exists"}],  # every node, tainted ones too
                    "containers": [container],
                    "volumes": [{"name": "bpffs", "hostPath": {"path": "/sys/fs/bpf"}}],
                },
            },
        },
    }


def secret(token: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(SECRET), "type": "Opaque",
            "stringData": {"token": token}}
