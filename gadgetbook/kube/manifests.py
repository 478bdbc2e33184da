"""The objects `gadgetbook deploy` applies, declared once (images/k8s/gadgetbook.yaml is printed from here)."""

from __future__ import annotations

from typing import Any

from gadgetbook.kube.api import DAEMONSET, HEALTH_PORT, NAMESPACE, NODE_LABELS, NODE_PORT, SECRET

DEFAULT_IMAGE = "localhost/gadgetbook-node:0.1.0"
BCC_IMAGE = DEFAULT_IMAGE + "-bcc"  # images/build.sh --bcc: with bcc, for %%bcc cells on the nodes
# A node pod's memory limit: the server at rest takes ~65 MB, a busy run up to ~95 MB; bcc compiling a program
# (LLVM, in a process of its own in the same pod) takes 110 MB for a TRACEPOINT_PROBE, 200 MB for one that
# includes the kernel's networking headers.
MEMORY_LIMIT = {False: "256Mi", True: "768Mi"}
MANAGED = {"app.kubernetes.io/part-of": "gadgetbook"}


def _meta(name: str, namespaced: bool = True, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**MANAGED, **(labels or {})}}
    if namespaced:
        meta["namespace"] = NAMESPACE
    return meta


RBAC = "rbac.authorization.k8s.io"
NODE_SA = "gadgetbook-node"
# The right a whole-host run asks for (`gadgetbook.node.access`): no built-in role grants it.
HOST_TRACER = "gadgetbook-host-tracer"


def _cluster_binding(name: str, role: str) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": _meta(name, namespaced=False),
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": NODE_SA, "namespace": NAMESPACE}]}


def objects(image: str = DEFAULT_IMAGE, bcc: bool = False) -> list[dict[str, Any]]:
    """Namespace, node ServiceAccount and its rights, user roles, and the node DaemonSet (`bcc`: pods that
    compile %%bcc programs, with the memory for it)."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NAMESPACE, namespaced=False)},
        # Its token is mounted (said explicitly: deploy patches over older versions that had it off).
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NODE_SA),
         "automountServiceAccountToken": True},
        # The node asks the API server who calls (TokenReview) and what they may do (SubjectAccessReview)...
        _cluster_binding("gadgetbook-node-auth", "system:auth-delegator"),
        # ...and which namespace a container it is asked to trace belongs to (its node's pods).
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": _meta("gadgetbook-node", namespaced=False),
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]},
        _cluster_binding("gadgetbook-node", "gadgetbook-node"),
        # What a user of gadgetbook needs, to bind to people or groups (see images/k8s/RBAC.md).
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole",
         "metadata": _meta("gadgetbook-user", namespaced=False),
         "rules": [
             # find the pods to trace, in any namespace the user may target, and follow new ones; the node
             # pods trace a pod's containers only for whoever may get pods in its namespace
             {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
         ]},
        {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": _meta("gadgetbook-user"),
         "rules": [
             # see that the node pods are deployed and ready
             {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get"]},
             {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
             # reach a node pod's API through the API server (a websocket port-forward is a GET)
             {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["get", "create"]},
         ]},
        # Runs over every process of a node (`--host`): a separate right, for the few who need it.
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": _meta(HOST_TRACER, namespaced=False),
         "rules": [{"apiGroups": ["gadgetbook.io"], "resources": ["nodes"], "verbs": ["trace"]}]},
        daemonset(image, bcc),
    ]


CLUSTER_OBJECTS = [("ClusterRoleBinding", "gadgetbook-node-auth"), ("ClusterRoleBinding", "gadgetbook-node"),
                   ("ClusterRole", "gadgetbook-node"), ("ClusterRole", "gadgetbook-user"),
                   ("ClusterRole", HOST_TRACER)]


def daemonset(image: str, bcc: bool = False) -> dict[str, Any]:
    env = [
        {"name": "GADGETBOOK_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "GADGETBOOK_TOKEN", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "token"}}},
        {"name": "GADGETBOOK_PORT", "value": str(NODE_PORT)},
        {"name": "GADGETBOOK_HEALTH_PORT", "value": str(HEALTH_PORT)},
        # Callers are who their own Kubernetes token says, with the rights the API server gives them.
        {"name": "GADGETBOOK_ACCESS", "value": "kubernetes"},
        # Busy runs allocate and free large batches on a few threads: fewer malloc arenas, and large
        # blocks always mapped on their own (glibc would otherwise raise that threshold after the first
        # frees and keep later blocks on its heap), give the memory back after a burst.
        {"name": "MALLOC_ARENA_MAX", "value": "2"},
        {"name": "MALLOC_MMAP_THRESHOLD_", "value": "131072"},
    ]
    container = {
        "name": "node",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["gadgetbook-node"],
        "env": env,
        # Loading BPF programs, reading every process's /proc and mounting tracefs.
        "securityContext": {"privileged": True},
        # An HTTP GET the kubelet makes itself: no process starts in the pod (an exec probe that started
        # Python every 5 s cost a quarter of a CPU).
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": HEALTH_PORT}, "periodSeconds": 5,
                           "timeoutSeconds": 5},
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": MEMORY_LIMIT[bcc]}},
        "volumeMounts": [{"name": "bpffs", "mountPath": "/sys/fs/bpf"}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta(DAEMONSET, labels=NODE_LABELS),
        "spec": {
            "selector": {"matchLabels": dict(NODE_LABELS)},
            "template": {
                "metadata": {"labels": {**MANAGED, **NODE_LABELS}},
                "spec": {
                    "serviceAccountName": NODE_SA,  # its token asks the API server about callers
                    "automountServiceAccountToken": True,
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
