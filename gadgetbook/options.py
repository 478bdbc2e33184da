"""One flag parser for the terminal and the notebook: common run flags plus each gadget's params."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from typing import Any

from gadgetbook import catalog
from gadgetbook.catalog.spec import GadgetSpec, Param
from gadgetbook.errors import GadgetError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_SIZE = re.compile(r"^(\d+)\s*([kKmMgG]i?[bB]?)?$")
OUTPUTS = ("columns", "json")


def parse_duration(text: str | float | int | None) -> float | None:
    """Seconds from 10, "10", "10s", "2m", "1h", "500ms", "1m30s"; None stays None."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        s = text.strip()
        if re.fullmatch(r"\d+(\.\d+)?", s):
            seconds = float(s)
        else:
            parts = _DURATION.findall(s)
            if not parts or "".join(n + u for n, u in parts) != s:
                raise GadgetError(f"Cannot read the duration {text!r}; write it as 10, 10s, 2m, 1h or 500ms.")
            unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
            seconds = sum(float(n) * unit[u] for n, u in parts)
    if seconds <= 0:
        raise GadgetError(f"The duration must be positive (got {text!r}).")
    return seconds


def parse_size(text: str | int) -> int:
    """Bytes from 4096, "64k", "4M", "1G"."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(text.strip())
    if not m:
        raise GadgetError(f"Cannot read the size {text!r}; write it as 4096, 64k or 4M.")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[(m.group(2) or "")[:1].lower()]
    return int(m.group(1)) * mult


@dataclass
class RunRequest:
    """A parsed gadget invocation: which gadget, its params, and whom to trace."""

    gadget: str
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    pid: int | None = None
    container: str | None = None
    selector: str | None = None
    output: str = "columns"
    save: str | None = None
    ring_size: int | None = None
    local: bool = False
    namespace: str | None = None
    all_namespaces: bool = False
    podname: str | None = None
    node: str | None = None
    context: str | None = None
    kubeconfig: str | None = None

    def run_kwargs(self) -> dict[str, Any]:
        keys = ("timeout", "pid", "container", "selector", "save", "ring_size", "namespace", "podname", "node",
                "context", "kubeconfig")
        kw = {k: getattr(self, k) for k in keys}
        kw |= {"all_namespaces": self.all_namespaces or None, "local": self.local or None}
        return {k: v for k, v in kw.items() if v is not None} | self.params


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so the notebook can show one sentence."""

    def error(self, message: str):  # type: ignore[override]
        raise GadgetError(f"{self.prog}: {message}; see `{self.prog} --help`.")


def plain_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser that raises GadgetError in one sentence instead of exiting."""
    return _Parser(prog=prog, description=description)


def gadget_parser(spec: GadgetSpec, prog: str | None = None) -> argparse.ArgumentParser:
    return run_parser(prog or f"gadgetbook {spec.name}", spec.description, spec.params, spec.examples,
                      f"{spec.name} parameters")


def run_parser(prog: str, description: str, params: dict[str, Param], examples: tuple[str, ...] = (),
               group: str = "parameters") -> argparse.ArgumentParser:
    """The run and target flags every gadget takes, then `params` as flags of their own."""
    p = _Parser(
        prog=prog,
        description=description,
        epilog="\n".join(examples) or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("run")
    g.add_argument("--timeout", "-t", metavar="DURATION",
                   help="stop after this long (10, 10s, 2m, 500ms); default: until Ctrl-C")
    g.add_argument("-o", "--output", choices=OUTPUTS, default="columns",
                   help="terminal output: aligned columns (default) or one JSON object per line")
    g.add_argument("--save", metavar="PATH.parquet", help="also record the events to a Parquet file")
    g.add_argument("--ring-size", metavar="BYTES",
                   help="ring buffer size, a power of two (default 4M); larger loses fewer events in bursts")
    t = p.add_argument_group("targets")
    t.add_argument("--pid", type=int, help="only this process id")
    t.add_argument("-c", "--containername", "--container", dest="container", metavar="NAME",
                   help="only the container with this name")
    t.add_argument("-l", "--selector", metavar="SELECTOR",
                   help="only containers whose labels match (key=value[,key2=value2], !=, in, notin)")
    t.add_argument("--local", action="store_true", help="trace this host even where a cluster is configured")
    k = p.add_argument_group("kubernetes (used when a kubeconfig is found, unless --local)")
    k.add_argument("-n", "--namespace", help="pods in this namespace (default: default)")
    k.add_argument("-A", "--all-namespaces", action="store_true", help="pods in every namespace")
    k.add_argument("-p", "--podname", help="only the pod with this name")
    k.add_argument("--node", help="only pods on this node")
    k.add_argument("--context", help="kubeconfig context")
    k.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    if params:
        gp = p.add_argument_group(group)
        for prm in params.values():
            if prm.type == "bool":
                gp.add_argument(prm.flag, dest=f"param_{prm.name}", action="store_true", default=prm.default,
                                help=prm.help)
            else:
                gp.add_argument(prm.flag, dest=f"param_{prm.name}", default=prm.default, metavar=prm.type.upper(),
                                help=f"{prm.help} (default: {prm.default})")
    return p


def attach_dash_values(params: dict[str, Param], argv: list[str]) -> list[str]:
    """`--sort -sent` as `--sort=-sent`: argparse would take a value that starts with '-' for a flag."""
    takes_text = {p.flag for p in params.values() if p.type == "str"}
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in takes_text and i + 1 < len(argv) and argv[i + 1].startswith("-") and argv[i + 1] != "--":
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def parse_run(argv: list[str], prog: str | None = None) -> RunRequest:
    """Parse `GADGET [flags]`; GadgetError with one sentence on anything wrong."""
    if not argv:
        raise GadgetError(f"Name a gadget: {', '.join(catalog.names())}.")
    spec = catalog.get(argv[0])
    ns = gadget_parser(spec, prog).parse_args(attach_dash_values(spec.params, argv[1:]))
    return request_of(ns, spec.name, spec.params)


def request_of(ns: argparse.Namespace, gadget: str, params: dict[str, Param]) -> RunRequest:
    """The RunRequest a parser of `run_parser` read."""
    return RunRequest(
        gadget=gadget,
        params={name: prm.check(getattr(ns, f"param_{name}")) for name, prm in params.items()},
        timeout=parse_duration(ns.timeout),
        pid=ns.pid,
        container=ns.container,
        selector=ns.selector,
        output=ns.output,
        save=ns.save,
        ring_size=parse_size(ns.ring_size) if ns.ring_size else None,
        local=ns.local,
        namespace=ns.namespace,
        all_namespaces=ns.all_namespaces,
        podname=ns.podname,
        node=ns.node,
        context=ns.context,
        kubeconfig=ns.kubeconfig,
    )
