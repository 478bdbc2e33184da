"""Watching workloads for an advisor: its gadget on the selected containers or pods, shown while it runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def watch(gadget: str, on_run: Callable[[Any], None] | None, **kwargs: Any):
    """`gadget` on the selected workloads, shown by `on_run` (the notebook's live view) or waited for:
    (the run, its result). Keywords left None or False are not passed on."""
    import gadgetbook

    run = gadgetbook.start(gadget, **{k: v for k, v in kwargs.items() if v})
    if on_run is not None:
        on_run(run)
    else:
        run.wait()
    return run, run.result()


def cluster_wanted(local: bool | None, kubeconfig: str | None, context: str | None) -> bool:
    """True when the workloads are pods: a cluster is configured or named, and --local was not asked."""
    from gadgetbook.kube.api import kubeconfig_path

    return not local and bool(kubeconfig or context or kubeconfig_path() is not None)
