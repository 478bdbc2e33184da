"""Who talks to whom, from tcptracer rows: workloads as nodes, connections as arrows (client -> server) with counts."""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from gadgetbook.errors import GadgetError

_COLORS = {"container": "#4C72B0", "host": "#55A868", "address": "#C44E52"}
MAX_EDGE_LABELS = 24  # more labels than this cover each other; the busiest edges keep theirs


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _normal(address: str) -> str:
    addr = ipaddress.ip_address(address)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        return str(addr.ipv4_mapped)
    return str(addr)


def _end(address: str, port, netns) -> tuple[str, int, int]:
    """A connection end; loopback addresses are only unique within their network namespace."""
    addr = _normal(address)
    return addr, int(port), int(netns) if ipaddress.ip_address(addr).is_loopback else 0


def connections(events, inventory: list[dict[str, Any]] | None = None):
    """One row per TCP connection: client, server (workload names, or addresses), server port.

    A connection traced at both ends (a connect row and an accept row) counts once; ends that were not
    traced are named from the inventory by address (containers, pods), else by the address itself.
    """
    import pandas as pd

    missing = {"type", "container", "comm", "saddr", "sport", "daddr", "dport"} - set(events.columns)
    if missing:
        raise GadgetError(f"These events lack the tcptracer columns {', '.join(sorted(missing))}; "
                          "draw from a tcptracer run or its recording.")
    if inventory is None:
        inventory = events.attrs.get("inventory") or []
    by_address = {_normal(a): c["name"] for c in inventory for a in c.get("addresses", [])}
    rows = events[events.type.isin(["connect", "accept"])]
    netns = rows.netns if "netns" in rows else [0] * len(rows)
    names: dict[tuple, tuple[str, str]] = {}  # an end (address, port, scope) -> (name, kind) of a traced end
    conns: dict[tuple, dict[str, Any]] = {}
    for kind, container, comm, saddr, sport, daddr, dport, ns in zip(
            rows.type.astype(str), rows.container.astype(str), rows.comm.astype(str), rows.saddr.astype(str),
            rows.sport, rows.daddr.astype(str), rows.dport, netns):
        me = (container, "container") if container else (f"{comm} (host)", "host")
        local, remote = _end(saddr, sport, ns), _end(daddr, dport, ns)
        names[local] = me
        if ipaddress.ip_address(remote[0]).is_loopback:
            names.setdefault(remote, me)  # the same network namespace: the same workload, unless traced
        client, server = (local, remote) if kind == "connect" else (remote, local)
        conns.setdefault((client, server), {"client": client, "server": server})

    def name(end: tuple) -> tuple[str, str]:
        if end in names:
            return names[end]
        if end[0] in by_address:
            return by_address[end[0]], "container"
        return end[0], "address"

    out = []
    for c in conns.values():
        (client, client_kind), (server, server_kind) = name(c["client"]), name(c["server"])
        out.append({"client": client, "client_kind": client_kind, "server": server, "server_kind": server_kind,
                    "port": c["server"][1]})
    return pd.DataFrame(out, columns=["client", "client_kind", "server", "server_kind", "port"])


def talk_graph(events, inventory: list[dict[str, Any]] | None = None, *, title: str | None = None,
               path: str | Path | None = None):
    """A matplotlib Figure of who connected to whom; arrows go client -> server, labelled ':port ×count'.

    Nodes sit on a circle (readable up to a few dozen); blue = container or pod, green = host process,
    red = an address no known workload has. `path` also saves the picture (PNG, SVG, ... by extension).
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    conns = connections(events, inventory)
    kinds: dict[str, str] = {}
    for _, c in conns.iterrows():
        kinds.setdefault(c.client, c.client_kind)
        kinds.setdefault(c.server, c.server_kind)
    edges: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for client, server, port in zip(conns.client, conns.server, conns.port):
        edges[(client, server)][int(port)] += 1

    nodes = sorted(kinds, key=lambda n: (kinds[n] != "container", _natural(n)))
    size = 4 + 0.35 * min(len(nodes), 30)
    fig = Figure(figsize=(size, size), dpi=100)
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or f"who talks to whom: {len(conns)} connections, {len(nodes)} endpoints")
    if not nodes:
        ax.text(0.5, 0.5, "no connections", ha="center", va="center", transform=ax.transAxes)
        return _saved(fig, path)
    # On a circle, starting at the top; a single node sits in the middle.
    n = len(nodes)
    pos = {node: (0.0, 0.0) if n == 1 else (math.sin(2 * math.pi * i / n), math.cos(2 * math.pi * i / n))
           for i, node in enumerate(nodes)}
    most = max((sum(c.values()) for c in edges.values()), default=1)
    labelled = set(sorted(edges, key=lambda e: -sum(edges[e].values()))[:MAX_EDGE_LABELS])
    for (client, server), ports in sorted(edges.items()):
        (x1, y1), (x2, y2) = pos[client], pos[server]
        count = sum(ports.values())
        width = 1 + 3 * math.log1p(count) / math.log1p(most)
        if client == server:
            arrow = FancyArrowPatch((x1 - 0.05, y1 + 0.05), (x1 + 0.05, y1 + 0.05), connectionstyle="arc3,rad=-2.5",
                                    arrowstyle="-|>", mutation_scale=14, lw=width, color="#555555", alpha=0.7)
            lx, ly = x1, y1 + 0.22
        else:
            arrow = FancyArrowPatch((x1, y1), (x2, y2), connectionstyle="arc3,rad=0.12", arrowstyle="-|>",
                                    mutation_scale=16, lw=width, color="#555555", alpha=0.7, shrinkA=18,
                                    shrinkB=18)
            # A third of the way from the client, a little to the side the arc bends to: labels of
            # opposite arrows, and of arrows crossing the middle, then rarely cover each other.
            lx = x1 + 0.35 * (x2 - x1) + 0.06 * (y2 - y1)
            ly = y1 + 0.35 * (y2 - y1) - 0.06 * (x2 - x1)
        ax.add_patch(arrow)
        if (client, server) not in labelled:
            continue
        label = f":{next(iter(ports))} ×{count}" if len(ports) == 1 else f"×{count}, {len(ports)} ports"
        ax.text(lx, ly, label, fontsize=8, ha="center", va="center",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
    for node in nodes:
        x, y = pos[node]
        ax.scatter([x], [y], s=500, color=_COLORS[kinds[node]], zorder=3, edgecolors="white", linewidths=2)
        ax.text(x * 1.18 if n > 1 else x, y * 1.18 - (0.2 if n == 1 else 0), node, fontsize=9,
                ha="center" if abs(x) < 0.3 else ("left" if x > 0 else "right"), va="center", zorder=4)
    ax.set_xlim(-1.9, 1.9)
    ax.set_ylim(-1.5, 1.5)
    legend = [ax.scatter([], [], s=80, color=c, label=k) for k, c in _COLORS.items() if k in kinds.values()]
    ax.legend(handles=legend, loc="lower right", frameon=False, fontsize=8)
    return _saved(fig, path)


def _saved(fig, path):
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, bbox_inches="tight")
    return fig
