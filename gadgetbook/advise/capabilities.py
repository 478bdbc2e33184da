"""Least-privilege capabilities for each workload: `drop: [ALL]` and `add:` exactly the capabilities it used.

Read from the capabilities gadget's rows, per workload (a pod in a cluster, a container on one host):
- a capability the kernel allowed in an audited check was used: it is added;
- a denied check is not added: the workload ran without that capability, and granting it would give more
  than it had. It is named in a comment above the snippet, for whoever knows the refusal broke something;
- checks the kernel makes without auditing them are left out: they are probes whose failure changes
  nothing the workload relies on (CAP_SYS_ADMIN in mmap's memory accounting, *_noaudit callers);
- checks made by the container runtime's own process while it sets up a container or an exec
  (runc's init) belong to the runtime, not to the workload.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gadgetbook.advise.advice import Advice
from gadgetbook.advise.watch import cluster_wanted, watch
from gadgetbook.errors import GadgetError
from gadgetbook.kernel.capability_names import bare_name

DEFAULT_TIMEOUT = 30.0
RUNTIME_COMMS = ("runc:[",)  # runc's init, in the container before it runs the workload's program
_NEEDED_COLUMNS = {"container", "capability", "verdict", "audit", "syscall", "count", "comm"}


@dataclass
class ContainerCapabilities:
    """What one container did with capabilities during the run."""

    name: str
    used: dict[str, set[str]] = field(default_factory=dict)  # CAP_* -> syscalls
    denied: dict[str, set[str]] = field(default_factory=dict)
    unaudited: Counter = field(default_factory=Counter)  # CAP_* -> checks

    @property
    def add(self) -> list[str]:
        return sorted(bare_name(c) for c in self.used)

    def security_context(self) -> dict[str, Any]:
        caps: dict[str, Any] = {"drop": ["ALL"]}
        if self.used:
            caps["add"] = self.add
        return {"capabilities": caps}


@dataclass
class Workload:
    """A pod (namespace and name) in a cluster, a container on one host."""

    name: str
    namespace: str = ""
    pod: bool = False
    containers: dict[str, ContainerCapabilities] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        if not self.pod:
            (only,) = self.containers.values()
            return {"container": only.name, "securityContext": only.security_context()}
        return {"pod": self.name, "namespace": self.namespace,
                "containers": [{"name": c.name, "securityContext": c.security_context()}
                               for c in sorted(self.containers.values(), key=lambda c: c.name)]}


@dataclass
class CapabilitiesAdvice(Advice):
    """Per workload, the securityContext that drops every capability and adds back those it used."""

    workloads: list[Workload] = field(default_factory=list)

    file_name: ClassVar[str] = "security-context.yaml"
    noun: ClassVar[tuple[str, str]] = ("securityContext", "securityContexts")
    flow_style: ClassVar[bool | None] = None  # drop: [ALL], add: [CHOWN, ...]

    @property
    def documents(self) -> list[dict[str, Any]]:
        return [w.document() for w in self.workloads]

    def comments(self, index: int) -> list[str]:
        workload = self.workloads[index]
        lines = []
        for c in workload.containers.values():
            who = f"{c.name}: " if workload.pod else ""
            for cap, syscalls in sorted(c.denied.items()):
                lines.append(f"{who}{bare_name(cap)} was refused ({', '.join(sorted(syscalls)) or 'no syscall'}) "
                             "and is not added: it ran without it.")
            if c.unaudited:
                probes = ", ".join(f"{bare_name(cap)} x{n}" for cap, n in sorted(c.unaudited.items()))
                lines.append(f"{who}left out, checked without auditing: {probes}.")
        return lines

    def capabilities(self, container: str) -> list[str]:
        """The capabilities to add for a container (by name), as Kubernetes writes them (CHOWN, ...)."""
        for w in self.workloads:
            if container in w.containers:
                return w.containers[container].add
        known = ", ".join(sorted(c for w in self.workloads for c in w.containers)) or "none"
        raise GadgetError(f"No advice for a container named {container!r}; the advice covers: {known}.")

    def podman_options(self, container: str) -> list[str]:
        """The same advice as podman run options: --cap-drop ALL, then --cap-add for each one used."""
        options = ["--cap-drop", "ALL"]
        for cap in self.capabilities(container):
            options += ["--cap-add", cap]
        return options

    def __repr__(self) -> str:
        names = ", ".join(w.name for w in self.workloads)
        return f"<CapabilitiesAdvice: {len(self.workloads)} workloads ({names}); .yaml, .documents, .save(path)>"


def contexts_from_events(events) -> CapabilitiesAdvice:
    """securityContexts for the workloads in a capabilities DataFrame (live, replayed, with or without
    --unique): a pod per namespace and pod name where rows name pods, else a container per name."""
    missing = _NEEDED_COLUMNS - set(events.columns)
    if missing:
        raise GadgetError(f"These events lack the capabilities columns {', '.join(sorted(missing))}; "
                          "advise from a capabilities run or its recording.")
    notes: list[str] = []
    outside = events.container.astype(str) == ""
    if outside.any():
        notes.append(f"{int(events['count'][outside].sum())} checks by processes outside containers were left out.")
    in_container = events[~outside]
    runtime = in_container.comm.astype(str).str.startswith(RUNTIME_COMMS)
    if runtime.any():
        notes.append(f"{int(in_container['count'][runtime].sum())} checks of the container runtime's own setup "
                      "(runc init) were left out.")
    rows = in_container[~runtime]
    pods = rows["pod"].astype(str) if "pod" in rows else None
    namespaces = rows["namespace"].astype(str) if "namespace" in rows else None
    workloads: dict[tuple[str, str], Workload] = {}
    columns = zip(rows.container.astype(str), rows.capability.astype(str), rows.verdict.astype(str),
                  rows.audit, rows.syscall.astype(str), rows["count"])
    for i, (container, cap, verdict, audit, syscall, count) in enumerate(columns):
        pod = pods.iloc[i] if pods is not None else ""
        ns = namespaces.iloc[i] if namespaces is not None else ""
        key = (ns, pod) if pod else ("", container)
        w = workloads.setdefault(key, Workload(name=pod or container, namespace=ns, pod=bool(pod)))
        c = w.containers.setdefault(container, ContainerCapabilities(container))
        if not audit:
            c.unaudited[cap] += int(count)
        elif verdict == "allowed":
            c.used.setdefault(cap, set()).add(syscall)
        else:
            c.denied.setdefault(cap, set()).add(syscall)
    if not workloads:
        notes.append("No capability check of the selected workloads was seen: each would drop all; none written.")
    ordered = sorted(workloads.values(), key=lambda w: (w.namespace, w.name))
    return CapabilitiesAdvice(events=events, notes=notes, workloads=ordered)


def advise_capabilities(events=None, *, selector: str | None = None, container: str | None = None,
                        timeout: float | str | None = DEFAULT_TIMEOUT, namespace: str | None = None,
                        on_run: Callable[[Any], None] | None = None, local: bool | None = None,
                        kubeconfig: str | None = None, context: str | None = None) -> CapabilitiesAdvice:
    """securityContexts from a capabilities DataFrame, or from watching the selected workloads for `timeout`.

    Live: the capabilities gadget runs with --unique (repeats are counted in the kernel) on the containers
    that match `selector` / `container`, or on the pods in a cluster (`namespace`); `on_run(run)` may show
    it while it runs, otherwise the call waits. The events come back in `.events`, to be saved and advised
    again offline.
    """
    if events is not None:
        return contexts_from_events(events)
    if not (selector or container):
        raise GadgetError("Name the workloads to advise for: -l SELECTOR or -c NAME.")
    target = ({"namespace": namespace, "kubeconfig": kubeconfig, "context": context}
              if cluster_wanted(local, kubeconfig, context) else {"local": True})
    _, df = watch("capabilities", on_run, selector=selector, container=container, timeout=timeout, unique=True,
                  **target)
    return contexts_from_events(df)
