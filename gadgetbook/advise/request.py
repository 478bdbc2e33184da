"""`advise network-policy` flags, one parser for the terminal and the notebook."""

from __future__ import annotations

from dataclasses import dataclass

from gadgetbook.errors import GadgetError
from gadgetbook.options import FlagParser, parse_duration

ADVISORS = ("network-policy",)


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
    """Parse `network-policy [flags]`; GadgetError in one sentence on anything wrong."""
    if not argv or argv[0] not in ADVISORS:
        got = f" (got {argv[0]!r})" if argv else ""
        raise GadgetError(f"Name what to advise: {prog} {' | '.join(ADVISORS)}{got}.")
    p = FlagParser(prog=f"{prog} {argv[0]}",
                description="Watch the selected workloads' TCP connections (tcptracer) and write the Kubernetes "
                            "NetworkPolicies that allow exactly those, nothing else.")
    p.add_argument("-l", "--selector", metavar="SELECTOR", help="workloads by label selector (app=api,tier!=db)")
    p.add_argument("-c", "--containername", "--container", dest="container", metavar="NAME",
                   help="the workload by container name")
    p.add_argument("--timeout", "-t", metavar="DURATION", default="30s", help="how long to watch (default: 30s)")
    p.add_argument("-n", "--namespace",
                   help="namespace of the pods to watch and of their policies (in a cluster; default: default)")
    p.add_argument("--from", dest="recording", metavar="PATH.parquet",
                   help="advise from a tcptracer recording instead of watching")
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
    return AdviseRequest(advisor=argv[0], selector=ns.selector, container=ns.container,
                         timeout=parse_duration(ns.timeout), namespace=ns.namespace, recording=ns.recording,
                         file=ns.file, save=ns.save, output=ns.output, local=ns.local, kubeconfig=ns.kubeconfig,
                         context=ns.context)


def advise(req: AdviseRequest, on_run=None):
    """Carry out a parsed request: watch (or replay), then write the policies where asked."""
    from gadgetbook.advise.network_policy import advise_network_policy

    events = None
    if req.save and not req.recording:
        from gadgetbook.frames.recording import check_destination

        check_destination(req.save)
    if req.recording:
        from gadgetbook.frames.recording import load

        events = load(req.recording)
    advice = advise_network_policy(events, selector=req.selector, container=req.container, timeout=req.timeout,
                                   namespace=req.namespace, on_run=on_run, local=req.local,
                                   kubeconfig=req.kubeconfig, context=req.context)
    if req.save and events is None:
        from gadgetbook.frames.recording import save_keeping

        _, notice = save_keeping(advice.events, req.save)
        if notice:
            advice.notes.append(notice)
    if req.file:
        advice.save(req.file)
    return advice
