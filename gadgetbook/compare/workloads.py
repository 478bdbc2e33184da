"""Names that stay the same from one run of a workload to the next: pod and container names without the
suffixes a controller or a lab adds per instance, and peers by name rather than by address."""

from __future__ import annotations

import re

import pandas as pd

# Kubernetes' generated suffixes (ReplicaSet hash, pod id) use this alphabet: no vowels, no 0, 1, 3.
_GENERATED = frozenset("bcdfghjklmnpqrstvwxz2456789")
_HEX = re.compile(r"[0-9a-f]{6,}")
HOST = "(host)"


def base_name(name: str) -> str:
    """`api-7d4b9c8f5b-x2x9q` -> `api`, `web-9a673c2f` -> `web`; `db-0` and `dns-server` stay as they are."""
    parts = name.split("-")
    while len(parts) > 1:
        last = parts[-1]
        generated = 5 <= len(last) <= 10 and set(last) <= _GENERATED and any(ch.isdigit() for ch in last) or (
            len(last) == 5 and set(last) <= _GENERATED)
        if generated or (_HEX.fullmatch(last) and any(ch.isdigit() for ch in last)):
            parts.pop()
            continue
        break
    return "-".join(parts)


def workloads(df: pd.DataFrame) -> pd.Series:
    """The workload of each row: namespace/pod/container in a cluster, the container on a host, else (host)."""
    def col(c: str) -> pd.Series:
        return df[c].astype(str) if c in df else pd.Series("", index=df.index)

    ns, pod, container = col("namespace"), col("pod"), col("container")
    names = {}
    for key in set(zip(ns.tolist(), pod.tolist(), container.tolist())):
        n, p, c = key
        if p:
            names[key] = f"{n}/{base_name(p)}/{c}" if n else f"{base_name(p)}/{c}"
        else:
            names[key] = base_name(c) if c else HOST
    return pd.Series([names[k] for k in zip(ns.tolist(), pod.tolist(), container.tolist())], index=df.index,
                     dtype=object)


def peers(df: pd.DataFrame, inventory: list[dict] | None) -> pd.Series:
    """The other end of each connection by a name that stays: the pod behind it, the container that has its
    address, else the DNS name it was looked up by, else the address itself."""
    from gadgetbook.investigation.joins import normal_address

    address = normal_address(df["daddr"])
    out = address.copy()
    if "remote_name" in df:
        names = df["remote_name"].astype(str)
        out = names.where(names != "", out)
    by_address = {a: base_name(c.get("pod") or c["name"]) for c in (inventory or []) for a in c.get("addresses", [])}
    known = address.map(lambda a: by_address.get(a, ""))
    out = known.where(known != "", out)
    if "remote_pod" in df:
        pods = df["remote_pod"].astype(str).map(lambda p: base_name(p) if p else "")
        out = pods.where(pods != "", out)
    return out.astype(object)
