"""A gadget run on this host: its kind loads it and opens the source, a Run drains it.

Used alike by the local API (`gadgetbook.start` without a cluster) and by the node server for a client.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gadgetbook.catalog.spec import GadgetSpec
from gadgetbook.kinds import kind_of
from gadgetbook.run_handle import Run
from gadgetbook.targets.local import LocalContainers


def start_on_host(spec: GadgetSpec, params: dict[str, Any], *, mntns_ids: Iterable[int] | None, pid: int | None,
                  ring_bytes: int | None, containers: LocalContainers, node: str, timeout: float | None = None,
                  targets: str = "", keep_batches: bool = True) -> Run:
    """Load and attach the gadget for these targets and return its live Run."""
    kind = kind_of(spec)
    source = kind.open(params, mntns_ids=mntns_ids, pid=pid, ring_bytes=ring_bytes, containers=containers, node=node)
    return Run(spec.name, params, [source], kind.columns(), timeout=timeout, targets=targets, schema=kind.empty(),
               categorical=kind.categorical, kind=kind, keep_batches=keep_batches)
