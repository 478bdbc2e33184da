"""Which pod has which IP address in a cluster: names peers of connections, and is the advisor's inventory."""

from __future__ import annotations

import threading
import time
from typing import Any

from gadgetbook.kube.api import Kube, call


def cluster_inventory(kube: Kube) -> list[dict[str, Any]]:
    """Every pod with its namespace, labels and addresses (JSON-ready, like the local inventory)."""
    pods = call("listing pods in all namespaces", kube.core.list_pod_for_all_namespaces).items
    out = []
    for pod in pods:
        if pod.spec.host_network:
            continue  # the node's addresses: a peer at one of them is the node, not this pod
        ips = [p.ip for p in (pod.status.pod_i_ps or []) if p.ip] or ([pod.status.pod_ip] if pod.status.pod_ip else [])
        out.append({"name": pod.metadata.name, "pod": pod.metadata.name, "namespace": pod.metadata.namespace,
                    "labels": dict(pod.metadata.labels or {}), "addresses": ips})
    return out


class PodAddresses:
    """address -> (namespace, pod), refreshed (at most every few seconds) when an unknown address shows up."""

    def __init__(self, kube: Kube, min_refresh_s: float = 3.0) -> None:
        self.kube = kube
        self._lock = threading.Lock()
        self._min_refresh_s = min_refresh_s
        self._refreshed = 0.0
        self.inventory: list[dict[str, Any]] = []
        self._by_address: dict[str, tuple[str, str]] = {}
        self.refresh()

    def refresh(self) -> None:
        inventory = cluster_inventory(self.kube)
        with self._lock:
            self.inventory = inventory
            self._by_address = {a: (c["namespace"], c["pod"]) for c in inventory for a in c["addresses"]}
            self._refreshed = time.monotonic()

    def lookup(self, addresses: list[str]) -> list[tuple[str, str]]:
        if any(_plain(a) not in self._by_address for a in addresses if a) and \
                time.monotonic() - self._refreshed > self._min_refresh_s:
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - names are a nicety; the rows still arrive
                self._refreshed = time.monotonic()
        return [self._by_address.get(_plain(a), ("", "")) for a in addresses]


def _plain(address: str) -> str:
    """IPv4-mapped IPv6 (::ffff:10.0.0.1) as the pod lists it (10.0.0.1)."""
    return address[7:] if address.startswith("::ffff:") and "." in address else address
