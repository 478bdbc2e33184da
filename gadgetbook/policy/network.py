"""Which recorded connections NetworkPolicies would have refused, by Kubernetes' rules.

A pod is isolated for egress (ingress) when a policy of its namespace selects it with that policy type; an
isolated pod's connection is allowed when a rule of one of those policies allows the peer and the port. A
connection is refused when the client's egress or the server's ingress refuses it. Each side is known from
the recording: the traced row (its pod or container) and the inventory (labels and addresses of containers
or pods); a peer the inventory does not know is matched by ipBlock rules only.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gadgetbook.errors import GadgetError
from gadgetbook.policy.labels import matches

COLUMNS = ["timestamp", "client", "server", "port", "refused_by", "policies", "client_address", "server_address"]


def load_policies(policies: Any) -> list[dict[str, Any]]:
    """NetworkPolicies from YAML text, a file, dicts, or an advisor's result; one sentence for anything else."""
    import yaml

    if hasattr(policies, "policies"):  # NetworkPolicyAdvice
        policies = policies.policies
    if isinstance(policies, os.PathLike) or (isinstance(policies, str) and "\n" not in policies
                                               and Path(policies).is_file()):
        policies = Path(policies).read_text()
    if isinstance(policies, str):
        try:
            docs = [d for d in yaml.safe_load_all(policies) if d is not None]
        except yaml.YAMLError as exc:
            raise GadgetError(f"The policy is not valid YAML ({str(exc).splitlines()[0]}).") from None
    elif isinstance(policies, dict):
        docs = [policies]
    else:
        docs = list(policies)
    out = []
    for i, doc in enumerate(docs, 1):
        if isinstance(doc, dict) and doc.get("kind") == "List":
            out += load_policies(doc.get("items") or [])
            continue
        if not isinstance(doc, dict) or doc.get("kind") != "NetworkPolicy" or \
                not str(doc.get("apiVersion", "")).startswith("networking.k8s.io/"):
            what = doc.get("kind") if isinstance(doc, dict) and doc.get("kind") else type(doc).__name__
            raise GadgetError(f"Document {i} of the policy is a {what}, not a NetworkPolicy (networking.k8s.io/v1); "
                              "give NetworkPolicy YAML.")
        out.append(doc)
    return out


@dataclass
class Endpoint:
    """One end of a connection: its name, namespace and labels when it is a known workload, and its address."""

    name: str
    address: str
    namespace: str | None = None
    labels: dict[str, str] | None = None

    @property
    def known(self) -> bool:
        return self.labels is not None


@dataclass
class PolicyCheck:
    """The refused connections (`refused`, a DataFrame), how many were checked, and notes."""

    refused: pd.DataFrame
    checked: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.refused)} of {self.checked} connections would have been refused"
                + "".join(f"\n{n}" for n in self.notes))

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        import html

        return (f'<pre class="gadgetbook-summary">{html.escape(self.summary())}</pre>'
                + self.refused.to_html(index=False, max_rows=50, border=0, classes="gadgetbook-table"))


def _ns(policy: dict[str, Any], default: str) -> str:
    return (policy.get("metadata") or {}).get("namespace") or default


def _types(policy: dict[str, Any]) -> list[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _peer_allowed(peer: dict[str, Any], other: Endpoint, policy_ns: str, notes: set[str]) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        addr = ipaddress.ip_address(other.address)
        if addr not in ipaddress.ip_network(block["cidr"], strict=False):
            return False
        return not any(addr in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
    if not other.known:
        return False
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is not None:
        ns_labels = {"kubernetes.io/metadata.name": other.namespace or ""}
        extra = {k for k in (ns_sel.get("matchLabels") or {}) if k != "kubernetes.io/metadata.name"}
        if extra:
            notes.add(f"Namespace labels other than kubernetes.io/metadata.name ({', '.join(sorted(extra))}) are "
                      "not in the recording: such namespaceSelectors match no namespace here.")
        if not matches(ns_sel, ns_labels):
            return False
    elif other.namespace != policy_ns:
        return False
    return matches(peer.get("podSelector"), other.labels or {})


def _port_allowed(ports: list[dict[str, Any]] | None, port: int, notes: set[str]) -> bool:
    if not ports:
        return True
    for p in ports:
        if str(p.get("protocol", "TCP")).upper() != "TCP":
            continue
        value = p.get("port")
        if value is None:
            return True
        if isinstance(value, str) and not value.isdigit():
            notes.add(f"Named ports ({value}) are not in the recording: rules that name a port match none here.")
            continue
        low, high = int(value), int(p.get("endPort") or value)
        if low <= port <= high:
            return True
    return False


def verdict(policies: list[dict[str, Any]], me: Endpoint, other: Endpoint, port: int, direction: str,
            default_ns: str, notes: set[str]) -> list[str] | None:
    """None when allowed; else the names of the policies that isolate `me` in this direction (and allow it not)."""
    if not me.known:
        return None  # an end that is not a workload of the recording: no policy of ours applies to it
    kind, rules_key, side = ("Egress", "egress", "to") if direction == "egress" else ("Ingress", "ingress", "from")
    isolating = [p for p in policies if _ns(p, default_ns) == me.namespace and kind in _types(p)
                 and matches((p.get("spec") or {}).get("podSelector"), me.labels or {})]
    if not isolating:
        return None
    for p in isolating:
        for rule in (p.get("spec") or {}).get(rules_key) or []:
            peers = rule.get(side)
            peer_ok = not peers or any(_peer_allowed(peer, other, _ns(p, default_ns), notes) for peer in peers)
            if peer_ok and _port_allowed(rule.get("ports"), port, notes):
                return None
    return [(p.get("metadata") or {}).get("name", "?") for p in isolating]


def _events(events: Any) -> tuple[pd.DataFrame, list[dict] | None]:
    from gadgetbook.investigation.result import Investigation

    if isinstance(events, (str, os.PathLike)):
        import gadgetbook

        events = gadgetbook.replay(str(events), show=False)
    if isinstance(events, Investigation):
        if "tcptracer" not in events:
            raise GadgetError("Checking a network policy needs connections: investigate with tcptracer.")
        return events.frames["tcptracer"], events.facts.get("inventory")
    missing = {"type", "daddr", "saddr", "sport", "dport"} - set(getattr(events, "columns", []))
    if missing:
        raise GadgetError(f"These events lack the tcptracer columns {', '.join(sorted(missing))}; check policies "
                          "against a tcptracer recording or an investigation with tcptracer.")
    return events, events.attrs.get("inventory")


def check_network_policy(policies: Any, events: Any, *, inventory: list[dict] | None = None,
                         namespace: str = "default") -> PolicyCheck:
    """The connections in `events` (a tcptracer DataFrame or recording, or an Investigation) that `policies`
    (NetworkPolicy YAML, a file, dicts, or an advisor's result) would have refused, one row per connection."""
    from gadgetbook.advise.network_policy import _normal, selector_labels
    from gadgetbook.compare.workloads import base_name, workloads

    docs = load_policies(policies)
    df, recorded = _events(events)
    inventory = inventory if inventory is not None else (recorded or [])
    by_address = {_normal(a): c for c in inventory for a in c.get("addresses", [])}
    by_pod = {(c.get("namespace", ""), c["pod"]): c for c in inventory if c.get("pod")}
    by_name = {(c.get("namespace", ""), c["name"]): c for c in inventory}
    rows = df[df["type"].astype(str).isin(["connect", "accept"])]
    names = workloads(rows)
    notes: set[str] = set()
    seen: dict[tuple, dict[str, Any]] = {}
    ns_col = rows["namespace"].astype(str) if "namespace" in rows else pd.Series("", index=rows.index)
    pod_col = rows["pod"].astype(str) if "pod" in rows else pd.Series("", index=rows.index)
    for i, (kind, container, saddr, sport, daddr, dport, ts) in enumerate(zip(
            rows["type"].astype(str), rows["container"].astype(str), rows["saddr"].astype(str), rows["sport"],
            rows["daddr"].astype(str), rows["dport"], rows["timestamp"])):
        ns, pod = ns_col.iloc[i], pod_col.iloc[i]
        meta = by_pod.get((ns, pod)) if pod else None
        meta = meta or by_name.get((ns, container)) or next((c for (_, n), c in by_name.items() if n == container),
                                                           None)
        local, remote = _normal(saddr), _normal(daddr)
        if ipaddress.ip_address(remote).is_loopback or remote == local:
            continue  # inside the workload: no policy applies
        me = Endpoint(base_name(pod or container) if (pod or container) else names.iloc[i], local,
                      ns or (meta or {}).get("namespace") or namespace,
                      selector_labels(meta["labels"]) if meta else None)
        peer_meta = by_address.get(remote)
        peer = Endpoint(base_name(peer_meta.get("pod") or peer_meta["name"]) if peer_meta else remote, remote,
                        (peer_meta or {}).get("namespace") or namespace if peer_meta else None,
                        selector_labels(peer_meta["labels"]) if peer_meta else None)
        client, server, port = (me, peer, int(dport)) if kind == "connect" else (peer, me, int(sport))
        key = (client.address, int(sport) if kind == "connect" else int(dport), server.address, port)
        entry = seen.setdefault(key, {"timestamp": ts, "client": client, "server": server, "port": port,
                                      "refused_by": set(), "policies": set()})
        for side, end, other, direction in (("egress", client, server, "egress"),
                                            ("ingress", server, client, "ingress")):
            refusing = verdict(docs, end, other, port, direction, namespace, notes)
            if refusing:
                entry["refused_by"].add(f"{side} of {end.name}")
                entry["policies"].update(refusing)
    out = [{"timestamp": e["timestamp"], "client": e["client"].name, "server": e["server"].name, "port": e["port"],
            "refused_by": ", ".join(sorted(e["refused_by"])), "policies": ", ".join(sorted(e["policies"])),
            "client_address": e["client"].address, "server_address": e["server"].address}
           for e in seen.values() if e["refused_by"]]
    refused = pd.DataFrame(out, columns=COLUMNS).sort_values("timestamp", ignore_index=True)
    return PolicyCheck(refused, len(seen), sorted(notes))

