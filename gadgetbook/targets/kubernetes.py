"""Whom to trace in a cluster: pods by namespace, name, label selector and node -> containers on nodes."""

from __future__ import annotations

from dataclasses import dataclass, field

from gadgetbook.errors import GadgetError
from gadgetbook.kube.api import NODE_LABELS, Kube, call
from gadgetbook.targets.selector import Selector


@dataclass(frozen=True)
class PodQuery:
    """kubectl-like target flags: -n, -A, -p, -c, -l, --node."""

    namespace: str | None = None
    all_namespaces: bool = False
    podname: str | None = None
    container: str | None = None
    selector: str | None = None
    node: str | None = None

    def describe(self) -> str:
        parts = ["-A" if self.all_namespaces else f"-n {self.namespace or 'default'}"]
        for flag, value in (("-p", self.podname), ("-c", self.container), ("-l", self.selector),
                            ("--node", self.node)):
            if value:
                parts.append(f"{flag} {value}")
        return " ".join(parts)


@dataclass(frozen=True)
class PodContainer:
    node: str
    namespace: str
    pod: str
    container: str
    container_id: str  # without the runtime:// prefix


@dataclass
class PodTargets:
    containers: list[PodContainer] = field(default_factory=list)

    def by_node(self) -> dict[str, list[PodContainer]]:
        out: dict[str, list[PodContainer]] = {}
        for c in self.containers:
            out.setdefault(c.node, []).append(c)
        return out

    def names(self) -> dict[str, tuple[str, str, str]]:
        return {c.container_id: (c.namespace, c.pod, c.container) for c in self.containers}


def running_containers(pod, container: str | None = None) -> list[PodContainer]:
    """The running containers of a pod object (status.containerStatuses), optionally one by name."""
    out = []
    for status in pod.status.container_statuses or []:
        if container and status.name != container:
            continue
        if not status.container_id or not (status.state and status.state.running):
            continue
        out.append(PodContainer(pod.spec.node_name or "", pod.metadata.namespace, pod.metadata.name, status.name,
                                status.container_id.split("://", 1)[-1]))
    return out


def list_pods(kube: Kube, q: PodQuery):
    if q.selector:
        Selector.parse(q.selector)  # one clear sentence before the API server's longer one
    kwargs = {}
    if q.selector:
        kwargs["label_selector"] = q.selector
    fields = ["status.phase=Running"]
    if q.podname:
        fields.append(f"metadata.name={q.podname}")
    if q.node:
        fields.append(f"spec.nodeName={q.node}")
    kwargs["field_selector"] = ",".join(fields)
    if q.all_namespaces:
        return call("listing pods in all namespaces", kube.core.list_pod_for_all_namespaces, **kwargs).items
    ns = q.namespace or "default"
    return call(f"listing pods in namespace {ns}", kube.core.list_namespaced_pod, ns, **kwargs).items


def resolve(kube: Kube, q: PodQuery) -> PodTargets:
    """Running containers of the matching pods; a GadgetError when there are none."""
    found = []
    for pod in list_pods(kube, q):
        if all(pod.metadata.labels and pod.metadata.labels.get(k) == v for k, v in NODE_LABELS.items()):
            continue  # never trace gadgetbook's own node pods by accident
        found.extend(running_containers(pod, q.container))
    if not found:
        from gadgetbook.hints import no_pods

        raise GadgetError(no_pods(q.describe()))
    return PodTargets(found)


def gone_pods(kube: Kube, q: PodQuery, targets: PodTargets) -> list[str]:
    """Sentences for the target pods that no longer run."""
    running = {(p.metadata.namespace, p.metadata.name) for p in list_pods(kube, q)}
    pods = sorted({(c.namespace, c.pod) for c in targets.containers} - running)
    return [f"Pod {ns}/{pod} ended during the run; nothing of it could be seen after that." for ns, pod in pods]
