"""Which IP addresses this host's containers have: read from /proc/<pid>/net of one of their processes."""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from gadgetbook.targets.local import Container, LocalContainers


def netns_of(pid: int | str) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def addresses_of(pid: int) -> list[str]:
    """The IPv4 and IPv6 addresses local to a process's network namespace, loopback and link-local left out."""
    found: list[str] = []
    try:
        with open(f"/proc/{pid}/net/fib_trie") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    # An address line ("|-- 10.88.0.2") is followed by its kind ("/32 host LOCAL") for local addresses.
    for prev, line in zip(lines, lines[1:]):
        if line.strip().endswith("host LOCAL") and "|--" in prev:
            found.append(prev.split("|--")[1].strip())
    try:
        with open(f"/proc/{pid}/net/if_inet6") as f:
            for line in f:
                raw = line.split()[0]
                found.append(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    except OSError:
        pass
    keep = []
    for text in dict.fromkeys(found):
        addr = ipaddress.ip_address(text)
        if not (addr.is_loopback or addr.is_link_local):
            keep.append(text)
    return keep


def local_inventory(containers: LocalContainers | None = None) -> list[dict[str, Any]]:
    """Every running container with its name, labels and addresses (JSON-ready, so recordings can keep it).

    Containers that share the host's network namespace have the host's addresses, not their own: they are
    listed without addresses, so no peer address is mistaken for them.
    """
    containers = containers or LocalContainers()
    try:
        host_netns = netns_of(1)
    except OSError:
        host_netns = netns_of("self")
    out = []
    for c in containers.refresh():
        out.append({"name": c.name, "namespace": c.namespace, "pod": c.pod, "labels": dict(c.labels),
                    "addresses": _container_addresses(c, host_netns)})
    return out


def _container_addresses(c: Container, host_netns: int) -> list[str]:
    for pid in c.pids:
        try:
            if netns_of(pid) == host_netns:
                return []
            return addresses_of(pid)
        except OSError:
            continue  # that process ended: try another of the container's
    return []
