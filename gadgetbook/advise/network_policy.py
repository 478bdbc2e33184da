"""Kubernetes NetworkPolicies that allow exactly the TCP connections tcptracer saw, and nothing else.

Ingress comes from accept rows (a peer connected to our port), egress from connect rows (we connected to a
peer's port). A peer that is a known container or pod is selected by its labels; any other peer by its
address (/32 or /128). Traffic inside a workload (loopback, its own addresses) needs no policy.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gadgetbook.advise.advice import Advice
from gadgetbook.advise.watch import cluster_wanted, watch
from gadgetbook.errors import GadgetError

# Labels a runtime or controller sets by itself: they name one instance, not the workload.
_VOLATILE_LABEL_PREFIXES = ("io.kubernetes.", "io.containerd.", "io.containers.", "io.podman.", "org.opencontainers.",
                            "io.cri-containerd.")
_VOLATILE_LABELS = {"pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name",
                    "pod-template-generation"}
DEFAULT_TIMEOUT = 30.0


@dataclass
class NetworkPolicyAdvice(Advice):
    """The policies (plain dicts, as the API takes them), their YAML, the events they came from, and notes."""

    policies: list[dict[str, Any]] = field(default_factory=list)

    file_name: ClassVar[str] = "network-policy.yaml"
    noun: ClassVar[tuple[str, str]] = ("NetworkPolicy", "NetworkPolicies")

    @property
    def documents(self) -> list[dict[str, Any]]:
        return self.policies

    def __repr__(self) -> str:
        names = ", ".join(p["metadata"]["name"] for p in self.policies)
        return f"<NetworkPolicyAdvice: {len(self.policies)} policies ({names}); .yaml, .policies, .save(path)>"


def selector_labels(labels: dict[str, str]) -> dict[str, str]:
    """The labels that identify a workload, without those a runtime or controller sets per instance."""
    return {k: v for k, v in sorted(labels.items())
            if k not in _VOLATILE_LABELS and not k.startswith(_VOLATILE_LABEL_PREFIXES)}


def _normal(address: str) -> str:
    addr = ipaddress.ip_address(address)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return str(addr)


def _dns_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:63].rstrip("-") or "workload"


def _peer(address: str, by_address: dict[str, dict], namespace: str) -> dict[str, Any]:
    known = by_address.get(address)
    labels = selector_labels(known["labels"]) if known else {}
    if not labels:
        bits = 32 if ipaddress.ip_address(address).version == 4 else 128
        return {"ipBlock": {"cidr": f"{address}/{bits}"}}
    peer: dict[str, Any] = {"podSelector": {"matchLabels": labels}}
    peer_ns = known.get("namespace") or namespace
    if peer_ns != namespace:
        peer["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": peer_ns}}
    return peer


def policies_from_events(events, inventory: list[dict[str, Any]] | None = None, *,
                         namespace: str | None = None) -> NetworkPolicyAdvice:
    """NetworkPolicies for the workloads in a tcptracer DataFrame (live or replayed).

    `inventory` lists the containers or pods (name, namespace, labels, addresses) that peers and the
    workloads themselves are matched against; by default the one kept with the events (`attrs`), else
    this host's running containers. A policy names its namespace when the workload is a pod (or `namespace`
    is given); one for a container outside Kubernetes names none: it applies where it is created.
    """
    missing = {"type", "container", "daddr", "sport", "dport"} - set(events.columns)
    if missing:
        raise GadgetError(f"These events lack the tcptracer columns {', '.join(sorted(missing))}; "
                          "advise from a tcptracer run or its recording.")
    if inventory is None:
        inventory = events.attrs.get("inventory")
    if inventory is None:
        from gadgetbook.targets.addresses import local_inventory

        inventory = local_inventory()
    by_name = {(c.get("namespace", ""), c["name"]): c for c in inventory}
    by_pod = {(c.get("namespace", ""), c["pod"]): c for c in inventory if c.get("pod")}
    by_address = {_normal(a): c for c in inventory for a in c.get("addresses", [])}
    notes: list[str] = []

    # Rules per workload, keyed by its selector so that replicas with the same labels share one policy.
    workloads: dict[tuple[str, str], dict[str, Any]] = {}
    rows = events[events.type.isin(["connect", "accept"]) & (events.container.astype(str) != "")]
    pod_ns = rows["namespace"].astype(str) if "namespace" in rows else None
    pods = rows["pod"].astype(str) if "pod" in rows else None
    for i, (kind, container, daddr, sport, dport) in enumerate(zip(rows.type.astype(str), rows.container.astype(str),
                                                                   rows.daddr.astype(str), rows.sport, rows.dport)):
        ns = (pod_ns.iloc[i] if pod_ns is not None else "") or ""
        pod = pods.iloc[i] if pods is not None else ""
        # In a cluster a row names its pod (containers of many pods share a name); on a host, its container.
        me = by_pod.get((ns, pod)) if pod else None
        me = me or by_name.get((ns, container)) or next((c for (_, n), c in by_name.items() if n == container), None)
        labels = selector_labels(me["labels"]) if me else {}
        if not labels:
            who = f"Pod {ns}/{pod}" if pod else f"Container {container}"
            note = f"{who} has no labels to select it by; label it to get a policy for it."
            if note not in notes:
                notes.append(note)
            continue
        ns = ns or me.get("namespace") or namespace or ""
        key = (ns, json.dumps(labels, sort_keys=True))
        w = workloads.setdefault(key, {"name": labels.get("app") or pod or container, "namespace": ns,
                                       "labels": labels,
                                       "own": set(), "ingress": {}, "egress": {}})
        w["own"] |= {_normal(a) for a in me.get("addresses", [])}
        peer_addr = _normal(daddr)
        if ipaddress.ip_address(peer_addr).is_loopback or peer_addr in w["own"]:
            continue  # inside the workload: no policy applies
        direction, port = ("ingress", int(sport)) if kind == "accept" else ("egress", int(dport))
        peer = _peer(peer_addr, by_address, ns)
        w[direction].setdefault(json.dumps(peer, sort_keys=True), (peer, set()))[1].add(port)

    policies = [_policy(w) for _, w in sorted(workloads.items(), key=lambda kv: (kv[1]["namespace"], kv[1]["name"]))]
    if not len(rows) and not notes:
        notes.append("No connection of the selected workloads was seen: the policies would deny all; none written.")
    return NetworkPolicyAdvice(events=events, notes=notes, policies=policies)


def _policy(w: dict[str, Any]) -> dict[str, Any]:
    def rules(direction: str, side: str) -> list[dict[str, Any]]:
        out = []
        for _, (peer, ports) in sorted(w[direction].items()):
            out.append({side: [peer], "ports": [{"protocol": "TCP", "port": p} for p in sorted(ports)]})
        return out

    spec: dict[str, Any] = {"podSelector": {"matchLabels": w["labels"]}, "policyTypes": ["Ingress", "Egress"]}
    # An absent list denies that direction: exactly what was seen is allowed, nothing more.
    ingress, egress = rules("ingress", "from"), rules("egress", "to")
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    metadata = {"name": _dns_name(f"{w['name']}-network")}
    if w["namespace"]:
        metadata["namespace"] = w["namespace"]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata, "spec": spec}


def advise_network_policy(events=None, *, selector: str | None = None, container: str | None = None,
                          timeout: float | str | None = DEFAULT_TIMEOUT, namespace: str | None = None,
                          inventory: list[dict[str, Any]] | None = None,
                          on_run: Callable[[Any], None] | None = None, local: bool | None = None,
                          kubeconfig: str | None = None, context: str | None = None) -> NetworkPolicyAdvice:
    """NetworkPolicies from a tcptracer DataFrame, or from watching the selected workloads for `timeout` seconds.

    Live: tcptracer runs on the containers that match `selector` / `container` (one sentence, nothing
    loaded, when none matches); `on_run(run)` may show it while it runs (the notebook's live view),
    otherwise the call waits. The events come back in `.events`, with the inventory in their attrs, so
    that a saved recording can be advised again offline.
    """
    if events is not None:
        return policies_from_events(events, inventory, namespace=namespace)
    from gadgetbook.targets.addresses import local_inventory
    from gadgetbook.targets.local import LocalContainers

    if not (selector or container):
        raise GadgetError("Name the workloads to advise for: -l SELECTOR or -c NAME.")
    if cluster_wanted(local, kubeconfig, context):
        return _advise_in_cluster(selector, container, timeout, namespace, kubeconfig, context, on_run)
    before = inventory if inventory is not None else local_inventory(LocalContainers())
    # This host's containers: the inventory peers are matched against is this host's too.
    _, df = watch("tcptracer", on_run, local=True, selector=selector, container=container, timeout=timeout)
    if inventory is None:
        # Containers that came or went during the run are known by either list.
        after = local_inventory(LocalContainers())
        known = {(c["namespace"], c["name"]) for c in after}
        inventory = after + [c for c in before if (c["namespace"], c["name"]) not in known]
    df.attrs["inventory"] = inventory
    return policies_from_events(df, inventory, namespace=namespace)


def _advise_in_cluster(selector, container, timeout, namespace, kubeconfig, context, on_run) -> NetworkPolicyAdvice:
    """Watch the selected pods with tcptracer on their nodes; peers are pods, named by their labels."""
    run, df = watch("tcptracer", on_run, namespace=namespace, selector=selector, container=container,
                    timeout=timeout, kubeconfig=kubeconfig, context=context)
    run.inventory.refresh()  # pods that came during the run are peers too
    df.attrs["inventory"] = run.inventory.inventory
    return policies_from_events(df, df.attrs["inventory"], namespace=namespace)
