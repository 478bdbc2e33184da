"""Lab 6, a cluster investigation: a small shop of Deployments in a namespace of the lab's own (a frontend, and two
backends, one of which cannot find its configuration and runs under a memory limit), removed with its namespace."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from gadgetbook.errors import GadgetError
from gadgetbook.labs.check import Question, columns, rows, values
from gadgetbook.labs.scenarios.base import Scenario

# The image the shop's pods run: any image with a busybox-like sh, cat and sleep. GADGETBOOK_LAB_IMAGE names
# another (a cluster without a registry has to be given one it holds).
IMAGE = os.environ.get("GADGETBOOK_LAB_IMAGE", "busybox:1.36")
CART_CONFIG = "/etc/cart/config.yaml"
MISSING_PAGE = "/srv/www/promo.html"
CART_MEMORY = 64 * 1024 * 1024
# name: (labels, replicas, loop, memory limit)
SHOP = {
    "frontend": ({"app": "frontend", "tier": "web"}, 2,
                 f"while true; do cat /etc/hostname {MISSING_PAGE} >/dev/null 2>&1; sleep 0.3; done", None),
    "cart": ({"app": "cart", "tier": "backend"}, 1,
             f"while true; do cat {CART_CONFIG} >/dev/null 2>&1; sleep 0.3; done", CART_MEMORY),
    "payments": ({"app": "payments", "tier": "backend"}, 1,
                 "while true; do cat /etc/hostname >/dev/null; sleep 0.3; done", None),
}
NODE_POD_SELECTOR = "app.kubernetes.io/name=gadgetbook-node"
READY_WITHIN = 180.0


def _deployment(name: str, labels: dict[str, str], replicas: int, loop: str, memory: int | None) -> dict[str, Any]:
    container = {"name": "app", "image": IMAGE, "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", loop]}
    if memory:
        container["resources"] = {"limits": {"memory": str(memory)}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 0, "containers": [container]}}}}


class ShopLab(Scenario):
    """`frontend` (2 pods, tier=web) reads a page that is not there; `cart` (tier=backend) reads a configuration
    that is not there and has a 64 MiB memory limit; `payments` (tier=backend) is fine. All in the namespace
    `lab.namespace`, deleted by close()."""

    lab = "cluster"
    needs = "a Kubernetes cluster with gadgetbook deployed (gadgetbook deploy) and a kubeconfig"
    replayable = False

    def setup(self) -> None:
        from kubernetes import client

        from gadgetbook.kube.api import connect

        kube = connect()
        self.core, self.apps = kube.core, kube.apps
        namespace = f"shop-{uuid.uuid4().hex[:6]}"
        self._call("creating a namespace", self.core.create_namespace, {"metadata": {"name": namespace}})
        self.on_close(lambda: self.core.delete_namespace(
            namespace, body=client.V1DeleteOptions(grace_period_seconds=0)))
        self.facts["namespace"] = namespace
        # Kubernetes 1.20 refuses pods until the namespace's service account has its token.
        self._wait("the namespace's service account", lambda: any(
            sa.secrets for sa in self.core.list_namespaced_service_account(namespace).items), 60)
        for name, (labels, replicas, loop, memory) in SHOP.items():
            self._call(f"creating the {name} Deployment", self.apps.create_namespaced_deployment, namespace,
                       _deployment(name, labels, replicas, loop, memory))
        want = sum(replicas for _, replicas, _, _ in SHOP.values())
        self._wait(f"{want} shop pods to run", lambda: len(self._ready()) == want, READY_WITHIN)
        self.facts["pods"] = {p.metadata.name: p.metadata.labels["app"] for p in self._ready()}

    def _call(self, what: str, fn, *args):
        from kubernetes.client.rest import ApiException

        try:
            return fn(*args)
        except ApiException as exc:
            raise GadgetError(f"The API server refused {what} (HTTP {exc.status}: {exc.reason}); the lab needs "
                              "the rights to create namespaces and Deployments.") from None

    def _ready(self) -> list:
        pods = self.core.list_namespaced_pod(self.namespace).items
        return [p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None
                and p.status.container_statuses and all(c.ready for c in p.status.container_statuses)]

    def _wait(self, what: str, done, within: float) -> None:
        deadline = time.monotonic() + within
        while not done():
            if time.monotonic() > deadline:
                raise GadgetError(f"Waited {within:.0f} s for {what}; {self._stuck()}")
            time.sleep(0.5)

    def _stuck(self) -> str:
        waiting = {s.state.waiting.reason for p in self.core.list_namespaced_pod(self.namespace).items
                   for s in (p.status.container_statuses or []) if s.state and s.state.waiting}
        if waiting & {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull"}:
            return (f"the nodes cannot pull {IMAGE}: set GADGETBOOK_LAB_IMAGE to an image with sh, cat and sleep "
                    "that they have.")
        return f"pods waiting: {', '.join(sorted(waiting)) or 'none yet'}; see kubectl get pods -n {self.namespace}."

    # -- for the notebook --

    @property
    def namespace(self) -> str:
        return self.facts["namespace"]

    def pods(self, app: str) -> list[str]:
        return sorted(p for p, a in self.facts["pods"].items() if a == app)

    def _node_pods(self) -> dict[str, str]:
        pods = self.core.list_namespaced_pod("gadgetbook", label_selector=NODE_POD_SELECTOR).items
        return {p.spec.node_name: p.metadata.name for p in pods}

    def questions(self) -> dict[str, Question]:
        cart = self.pods("cart")
        cart_nodes = {p.spec.node_name for p in self.core.list_namespaced_pod(self.namespace,
                                                                              label_selector="app=cart").items}
        node_pods = self._node_pods()
        return {
            "backend": Question(
                "Which pods are the shop's backend (tier=backend), and where do they run?",
                columns("pod", "node"), values("pod", set(self.pods("cart") + self.pods("payments"))),
                hint="list_namespaced_pod takes label_selector='tier=backend'; a pod's node is spec.node_name."),
            "failing": Question(
                "Which backend pod fails to open which file?",
                columns("pod", "path", "error"), values("pod", set(cart)), values("path", {CART_CONFIG}),
                values("error", {"ENOENT"}),
                hint="Keep the rows of opens whose pod is one of the backend pods (isin), then the distinct pod, "
                     "path and error."),
            "tracer": Question(
                "Which gadgetbook node pod traced the failing pod?",
                columns("node", "pod"), rows(len(cart_nodes)), values("node", cart_nodes),
                values("pod", {node_pods.get(n, "?") for n in cart_nodes}),
                hint="The node pods are in the namespace gadgetbook with the label "
                     f"{NODE_POD_SELECTOR}; keep the one on the failing pod's node."),
            "limit": Question(
                "What memory limit does the kernel enforce on the failing pod's processes?",
                columns("limit_bytes"), rows(at_least=1), values("limit_bytes", {CART_MEMORY}),
                hint="In the %%node cell: the pod's shell, whose /proc/PID/cmdline names the missing file, and the "
                     "limit of its cgroup as its container sees it: /proc/PID/root/sys/fs/cgroup/memory/"
                     "memory.limit_in_bytes (cgroup v1) or /proc/PID/root/sys/fs/cgroup/memory.max (v2)."),
        }
