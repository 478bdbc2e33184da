"""A run the node API starts for a client: containers by id (as Kubernetes reports them) to mount namespaces."""

from __future__ import annotations

import socket
from typing import Any

import numpy as np

from gadgetbook import catalog
from gadgetbook.client.run import Run
from gadgetbook.errors import GadgetError
from gadgetbook.frames.coded import Coded, coded, factorize
from gadgetbook.node.session import DEFAULT_RING_BYTES
from gadgetbook.node.sources import open_local
from gadgetbook.targets.local import LocalContainers


def bare_id(container_id: str) -> str:
    """`containerd://abc...` (Kubernetes' form) -> `abc...`."""
    return container_id.split("://", 1)[-1]


def start_on_node(msg: dict[str, Any]) -> tuple[Run, LocalContainers]:
    spec = catalog.get(str(msg.get("gadget", "")))
    raw = msg.get("params") or {}
    unknown = set(raw) - set(spec.params)
    if unknown:
        raise GadgetError(f"{spec.name} has no parameter {', '.join(sorted(unknown))}.")
    params = {name: prm.check(raw.get(name, prm.default)) for name, prm in spec.params.items()}
    containers = LocalContainers()
    ids = msg.get("container_ids")
    mntns_ids = None
    if ids is not None:
        mntns_ids = _mntns_of(containers, ids)
    node = msg.get("node") or socket.gethostname()
    source, decoder = open_local(spec, params, mntns_ids=mntns_ids, pid=msg.get("pid"),
                                 ring_bytes=int(msg.get("ring_size") or DEFAULT_RING_BYTES),
                                 containers=containers, node=node)
    run = Run(spec.name, params, [source], decoder.names(), timeout=msg.get("timeout"),
              schema=decoder.empty(), categorical=decoder.categorical, keep_batches=False)
    run.node_source = source
    return run, containers


def _mntns_of(containers: LocalContainers, ids: list[str]) -> set[int]:
    wanted = {bare_id(i) for i in ids}
    found = {c.id: c for c in containers.refresh()}
    return {m for cid in wanted if cid in found for m in found[cid].mntns_ids}


def add_containers(run: Run, containers: LocalContainers, ids: list[str]) -> None:
    """Containers that started during the run join its filter."""
    mntns = _mntns_of(containers, ids)
    if mntns:
        run.node_source.session.add_mntns(mntns)


def with_container_ids(batch: dict, containers: LocalContainers) -> dict:
    """The batch plus a container_id column, which the client turns into pod and container names."""
    mntns = batch["mntns_id"]
    codes, uniques = factorize(np.asarray(mntns))
    by_mntns = containers.ids(uniques.tolist())
    out = dict(batch)
    out["container_id"] = coded(np.arange(len(by_mntns)), lambda i: by_mntns[i]).take(codes) if len(mntns) \
        else Coded(np.empty(0, np.int32), np.empty(0, "O"))
    return out
