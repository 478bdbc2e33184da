"""A run the node API starts for a client: containers by id (as Kubernetes reports them) to mount namespaces."""

from __future__ import annotations

import socket
from typing import Any

import numpy as np

from gadgetbook import catalog
from gadgetbook.frames.coded import Coded, coded, factorize
from gadgetbook.host_run import start_on_host
from gadgetbook.protocol import CONTAINER_ID
from gadgetbook.run_handle import Run
from gadgetbook.targets.local import LocalContainers


def bare_id(container_id: str) -> str:
    """`containerd://abc...` (Kubernetes' form) -> `abc...`."""
    return container_id.split("://", 1)[-1]


def start_on_node(msg: dict[str, Any]) -> tuple[Run, LocalContainers]:
    """The run a START message asks for; the node streams its batches and keeps none."""
    program = msg.get("program")
    if program is None:
        spec, object_file = catalog.get(str(msg.get("gadget", ""))), None
    else:  # a program of one's own, compiled by the client for this kernel
        from gadgetbook.programs.wire import spec_from_wire

        spec, object_file = spec_from_wire(program)
    try:
        params = spec.checked_params(msg.get("params") or {})
        containers = LocalContainers()
        ids = msg.get("container_ids")
        mntns_ids = _mntns_of(containers, ids) if ids is not None else None
        run = start_on_host(spec, params, mntns_ids=mntns_ids, pid=msg.get("pid"),
                            ring_bytes=int(msg["ring_size"]) if msg.get("ring_size") else None,
                            containers=containers, node=msg.get("node") or socket.gethostname(),
                            timeout=msg.get("timeout"), keep_batches=False)
    finally:
        if object_file is not None:
            object_file.unlink(missing_ok=True)  # loaded (or refused): the file has served
    return run, containers


def _mntns_of(containers: LocalContainers, ids: list[str]) -> set[int]:
    wanted = {bare_id(i) for i in ids}
    found = {c.id: c for c in containers.refresh()}
    return {m for cid in wanted if cid in found for m in found[cid].mntns_ids}


def add_containers(run: Run, containers: LocalContainers, ids: list[str]) -> None:
    """Containers that started during the run join its filter."""
    mntns = _mntns_of(containers, ids)
    if mntns:
        for source in run.sources:
            source.add_mntns(mntns)


def with_container_ids(batch: dict, containers: LocalContainers) -> dict:
    """The batch plus a container_id column, which the client turns into pod and container names."""
    if "mntns_id" not in batch:  # a program's records without gadget.h's header: no container to name
        n = len(next(iter(batch.values()))) if batch else 0
        return {**batch, CONTAINER_ID: Coded(np.zeros(n, np.int32), np.array([""], dtype="O"))}
    mntns = batch["mntns_id"]
    codes, uniques = factorize(np.asarray(mntns))
    by_mntns = containers.ids(uniques.tolist())
    out = dict(batch)
    out[CONTAINER_ID] = coded(np.arange(len(by_mntns)), lambda i: by_mntns[i]).take(codes) if len(mntns) \
        else Coded(np.empty(0, np.int32), np.empty(0, "O"))
    return out
