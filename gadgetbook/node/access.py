"""Who may trace what on this node: the caller's Kubernetes identity and rights, asked of the API server.

A caller sends its own bearer token. The node learns who that is with a TokenReview, then, before it
loads anything, asks with SubjectAccessReviews whether that identity may `get pods` in each namespace
whose containers it would trace, or, for a run over the whole host, `trace` this node in the
`gadgetbook.io` API group (a right no built-in role grants). Answers are cached for a few seconds.
Plain HTTP to the API server: the Kubernetes client library would double the node's memory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Protocol

from gadgetbook.errors import GadgetError

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
HOST_GROUP, HOST_RESOURCE, HOST_VERB = "gadgetbook.io", "nodes", "trace"


class Refused(GadgetError):
    """A request the caller has no right to make; `status` is the HTTP answer (401 or 403)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Caller:
    user: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=(), compare=False)


class Access(Protocol):
    def caller(self, token: str) -> Caller: ...
    def check_namespaces(self, caller: Caller, namespaces: set[str]) -> None: ...
    def check_host(self, caller: Caller) -> None: ...
    def namespaces_of(self, container_ids: list[str]) -> dict[str, str]: ...


class SharedToken:
    """A node outside a cluster (a test, a lab VM): one token, and whoever has it may do everything."""

    def __init__(self, token: str) -> None:
        self._token = token

    def caller(self, token: str) -> Caller:
        if not (token and hmac.compare_digest(token.encode(), self._token.encode())):
            raise Refused("The node API refused the token.", 401)
        return Caller("node-token")

    def check_namespaces(self, caller: Caller, namespaces: set[str]) -> None:
        return None

    def check_host(self, caller: Caller) -> None:
        return None

    def namespaces_of(self, container_ids: list[str]) -> dict[str, str]:
        return {cid: "" for cid in container_ids}


class _TTLCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict = {}
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            hit = self._data.get(key)
            if hit and hit[0] > time.monotonic():
                return hit[1]
            self._data.pop(key, None)
            return None

    def put(self, key, value) -> None:
        with self._lock:
            if len(self._data) > 4096:  # a bound, whoever calls
                self._data.clear()
            self._data[key] = (time.monotonic() + self.ttl, value)


class KubernetesAccess:
    """The node in a cluster: TokenReview and SubjectAccessReview with the node's own service account
    (bound to `system:auth-delegator`), and this node's pods to know which namespace a container is in."""

    def __init__(self, node: str, server: str | None = None, sa_dir: str = SA_DIR, ttl: float = 10.0) -> None:
        self.node = node
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if server is None and not host:
            raise GadgetError("The node runs outside a cluster (no KUBERNETES_SERVICE_HOST); "
                              "set GADGETBOOK_ACCESS=token to serve with a token of its own.")
        if server is None:
            server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        self.server = server
        self._sa_dir = sa_dir
        self._ctx: ssl.SSLContext | None = None  # made at the first request: a missing file is one sentence then
        self._callers = _TTLCache(ttl)
        self._allowed = _TTLCache(ttl)
        self._pods = _TTLCache(2.0)

    # -- talking to the API server --

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        try:
            if self._ctx is None:
                self._ctx = ssl.create_default_context(cafile=os.path.join(self._sa_dir, "ca.crt"))
            with open(os.path.join(self._sa_dir, "token")) as f:  # kubelet rotates it: read it each time
                token = f.read().strip()
        except OSError as exc:
            raise GadgetError(f"The node has no service account token to check rights with ({exc}); "
                              "redeploy with `gadgetbook deploy`.") from None
        req = urllib.request.Request(self.server + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                              "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10, context=self._ctx) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise GadgetError(f"The node could not check rights with the API server (HTTP {exc.code} on {path}); "
                              "redeploy with `gadgetbook deploy` to restore its role.") from None
        except (OSError, ValueError) as exc:
            raise GadgetError(f"The node cannot reach the API server to check rights ({exc}).") from None

    # -- Access --

    def caller(self, token: str) -> Caller:
        if not token:
            raise Refused("The node API needs your Kubernetes bearer token; use a kubeconfig whose user has "
                          "a token (a client certificate cannot be passed on).", 401)
        key = hashlib.sha256(token.encode()).digest()
        hit = self._callers.get(key)
        if hit is None:
            review = self._request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
            status = review.get("status") or {}
            if not status.get("authenticated"):
                hit = Refused("The API server did not accept your token for the node API; check the kubeconfig's "
                              "user.", 401)
            else:
                u = status.get("user") or {}
                extra = tuple(sorted((k, tuple(v)) for k, v in (u.get("extra") or {}).items()))
                hit = Caller(u.get("username", ""), tuple(u.get("groups") or ()), u.get("uid", ""), extra)
            self._callers.put(key, hit)
        if isinstance(hit, Refused):
            raise hit
        return hit

    def _allowed_to(self, caller: Caller, attributes: dict) -> bool:
        key = (caller, tuple(sorted(attributes.items())))
        hit = self._allowed.get(key)
        if hit is None:
            spec = {"user": caller.user, "groups": list(caller.groups), "resourceAttributes": attributes}
            if caller.uid:
                spec["uid"] = caller.uid
            if caller.extra:
                spec["extra"] = {k: list(v) for k, v in caller.extra}
            review = self._request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
            hit = bool((review.get("status") or {}).get("allowed"))
            self._allowed.put(key, hit)
        return hit

    def check_namespaces(self, caller: Caller, namespaces: set[str]) -> None:
        for ns in sorted(namespaces):
            if not self._allowed_to(caller, {"namespace": ns, "verb": "get", "resource": "pods"}):
                raise Refused(f"{caller.user} may not get pods in namespace {ns}, so the node traces nothing there; "
                              f"ask for the gadgetbook-user role in {ns} (see images/k8s/RBAC.md).")

    def check_host(self, caller: Caller) -> None:
        if not self._allowed_to(caller, {"group": HOST_GROUP, "resource": HOST_RESOURCE, "verb": HOST_VERB,
                                         "name": self.node}):
            raise Refused(f"{caller.user} may not trace every process of node {self.node}; a run over a whole host "
                          "needs the gadgetbook-host-tracer role (see images/k8s/RBAC.md).")

    def namespaces_of(self, container_ids: list[str]) -> dict[str, str]:
        """Namespace of each container running on this node, as the API server knows it; ids of
        containers that are not this node's pods are left out."""
        found = self._pods.get("pods") or {}
        if any(cid not in found for cid in container_ids):
            pods = self._request("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.node}")
            found = {}
            for pod in pods.get("items") or []:
                ns = pod["metadata"]["namespace"]
                for st in (pod.get("status") or {}).get("containerStatuses") or []:
                    if st.get("containerID"):
                        found[st["containerID"].split("://", 1)[-1]] = ns
            self._pods.put("pods", found)
        return {cid: found[cid] for cid in container_ids if cid in found}


def from_environment(node: str, server_token: str) -> Access:
    """GADGETBOOK_ACCESS=kubernetes (the DaemonSet) or token (default: the server's own token)."""
    mode = os.environ.get("GADGETBOOK_ACCESS", "token")
    if mode == "kubernetes":
        return KubernetesAccess(node, os.environ.get("GADGETBOOK_API_SERVER") or None)
    if mode == "token":
        return SharedToken(server_token)
    raise GadgetError(f"GADGETBOOK_ACCESS={mode!r}: set it to kubernetes or token.")
