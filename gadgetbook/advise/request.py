"""`advise ADVISOR` flags, one parser for the terminal and the notebook, and the advisors it knows.

Every advisor is declared once in ADVISORS: what it watches and writes, and the function that does it.
Each such function takes the same keywords: the events to advise from (a DataFrame, or None to watch),
then selector, container, timeout, namespace, on_run, local, kubeconfig and context.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gadgetbook.errors import GadgetError
from gadgetbook.options import FlagParser, parse_duration


@dataclass(frozen=True)
class Advisor:
    """One advisor: its name on the command line, the gadget it watches, what it writes, where it lives."""

    name: str
    gadget: str
    description: str
    function: str  # "module:function", imported when used

    def load(self) -> Callable[..., Any]:
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(module), name)


ADVISORS = {a.name: a for a in (
    Advisor("network-policy", "tcptracer",
            "Watch the selected workloads' TCP connections (tcptracer) and write the Kubernetes NetworkPolicies "
            "that allow exactly those, nothing else.",
            "gadgetbook.advise.network_policy:advise_network_policy"),
    Advisor("capabilities", "capabilities",
            "Watch the selected workloads' capability checks (capabilities --unique) and write, per pod or "
            "container, the securityContext that drops ALL and adds back only the capabilities used.",
            "gadgetbook.advise.capabilities:advise_capabilities"),
)}


@dataclass
class AdviseRequest:
    advisor: str
    selector: str | None = None
    container: str | None = None
    timeout: float | None = None
    namespace: str | None = None
    recording: str | None = None
    file: str | None = None
    save: str | None = None
    output: str = "yaml"
    local: bool = False
    kubeconfig: str | None = None
    context: str | None = None


def parse_advise(argv: list[str], prog: str = "gadgetbook advise") -> AdviseRequest:
    """Parse `ADVISOR [flags]`; GadgetError in one sentence on anything wrong."""
    if not argv or argv[0] not in ADVISORS:
        got = f" (got {argv[0]!r})" if argv else ""
        raise GadgetError(f"Name what to advise: {prog} {' | '.join(ADVISORS)}{got}.")
    advisor = ADVISORS[argv[0]]
    p = FlagParser(prog=f"{prog} {advisor.name}", description=advisor.description)
    p.add_argument("-l", "--selector", metavar="SELECTOR", help="workloads by label selector (app=api,tier!=db)")
    p.add_argument("-c", "--containername", "--container", dest="container", metavar="NAME",
                   help="the workload by container name")
    p.add_argument("--timeout", "-t", metavar="DURATION", default="30s", help="how long to watch (default: 30s)")
    p.add_argument("-n", "--namespace",
                   help="namespace of the pods to watch and of what is written (in a cluster; default: default)")
    p.add_argument("--from", dest="recording", metavar="PATH.parquet",
                   help=f"advise from a {advisor.gadget} recording instead of watching")
    p.add_argument("--file", metavar="PATH.yaml", help="also write the YAML to this file")
    p.add_argument("--save", metavar="PATH.parquet", help="also record the watched events")
    p.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml", help="terminal output")
    p.add_argument("--local", action="store_true",
                   help="watch this host's containers even where a cluster is configured")
    p.add_argument("--kubeconfig", help="kubeconfig file (a cluster: the workloads are pods)")
    p.add_argument("--context", help="kubeconfig context")
    ns = p.parse_args(argv[1:])
    if not ns.recording and not (ns.selector or ns.container):
        raise GadgetError(f"{p.prog}: name the workloads to watch with -l SELECTOR or -c NAME (or --from a recording).")
    return AdviseRequest(advisor=advisor.name, selector=ns.selector, container=ns.container,
                         timeout=parse_duration(ns.timeout), namespace=ns.namespace, recording=ns.recording,
                         file=ns.file, save=ns.save, output=ns.output, local=ns.local, kubeconfig=ns.kubeconfig,
                         context=ns.context)


def advise(req: AdviseRequest, on_run=None):
    """Carry out a parsed request: watch (or replay), then write the advice where asked."""
    events = None
    if req.recording:
        from gadgetbook.frames.recording import load

        events = load(req.recording)
    advice = ADVISORS[req.advisor].load()(
        events, selector=req.selector, container=req.container, timeout=req.timeout, namespace=req.namespace,
        on_run=on_run, local=req.local, kubeconfig=req.kubeconfig, context=req.context)
    if req.save and events is None:
        from gadgetbook.frames.recording import save

        save(advice.events, req.save)
    if req.file:
        advice.save(req.file)
    return advice
