"""One flag parser for the terminal and the notebook: common run flags plus each gadget's params."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from typing import Any

from gadgetbook import catalog
from gadgetbook.catalog.spec import GadgetSpec, Param
from gadgetbook.errors import GadgetError
from gadgetbook.hints import closest, did_you_mean
from gadgetbook.usage import NOTEBOOK, TERMINAL, Words, timeout_help

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


@dataclass(kw_only=True)
class TargetFlags:
    """Whom to trace or record, as the flags say: containers on this host, or pods in a cluster."""

    container: str | None = None
    selector: str | None = None
    local: bool = False
    namespace: str | None = None
    all_namespaces: bool = False
    podname: str | None = None
    node: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    host: bool = False
    include_self: bool = False

    def cluster_flags(self) -> dict[str, Any]:
        """The Kubernetes flags given (any of them means a cluster, unless --local)."""
        kw = {k: getattr(self, k) for k in ("namespace", "podname", "node", "context", "kubeconfig")}
        kw |= {"all_namespaces": self.all_namespaces or None, "host": self.host or None,
               "include_self": self.include_self or None}
        return {k: v for k, v in kw.items() if v is not None}

    def wants_cluster(self) -> bool:
        """A cluster flag was given (-n, -A, -p, --node, --context, --kubeconfig)."""
        return bool(self.cluster_flags())


@dataclass(kw_only=True)
class RunRequest(TargetFlags):
    """A parsed gadget invocation: which gadget, its params, and whom to trace."""

    gadget: str
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    pid: int | None = None
    output: str = "columns"
    save: str | None = None
    tail: int | None = None
    ring_size: int | None = None

    def run_kwargs(self) -> dict[str, Any]:
        kw = {k: getattr(self, k) for k in ("timeout", "pid", "container", "selector", "save", "tail", "ring_size")}
        kw |= {"local": self.local or None}
        return {k: v for k, v in kw.items() if v is not None} | self.cluster_flags() | self.params


def target_flags(ns: argparse.Namespace) -> dict[str, Any]:
    """The target flags parsed by `_target_flags`, as TargetFlags' keywords."""
    return {k: getattr(ns, k) for k in ("container", "selector", "local", "namespace", "all_namespaces", "podname",
                                        "node", "context", "kubeconfig", "host", "include_self")}


class FlagParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so the notebook can show one sentence; a mistyped flag gets
    the closest flags offered."""

    def error(self, message: str):  # type: ignore[override]
        if message.startswith("unrecognized arguments: "):
            flags = [s for a in self._actions for s in a.option_strings if a.help != argparse.SUPPRESS]
            for word in message.split(": ", 1)[1].split():
                close = closest(word.split("=")[0], flags)
                if close:
                    message += f" (did you mean {' or '.join(close)}?)"
                    break
        raise GadgetError(f"{self.prog}: {message}; see `{self.prog} --help`.")


def _run_flags(p: argparse.ArgumentParser, words: Words) -> None:
    """The run, target and Kubernetes flags every gadget takes (an investigation too), in the front end's words."""
    g = p.add_argument_group("run")
    g.add_argument("--timeout", "-t", metavar="DURATION", help=timeout_help(words))
    g.add_argument("-o", "--output", choices=OUTPUTS, default="columns",
                   help=argparse.SUPPRESS if words.notebook else
                   "terminal output: aligned columns (default) or one JSON object per line")
    g.add_argument("--save", metavar="PATH", help="also record the events: PATH.parquet is one file written at the "
                   "end; any other PATH is a folder the events stream to as they come (a Parquet dataset by node "
                   "and hour), and only the newest --tail rows stay in memory")
    g.add_argument("--tail", metavar="ROWS", type=int, help="with --save FOLDER: rows kept in memory (default 100000)")
    g.add_argument("--ring-size", metavar="BYTES",
                   help="ring buffer size, a power of two (default 4M); larger loses fewer events in bursts")
    t = p.add_argument_group("targets")
    t.add_argument("--pid", type=int, help="only this process id")
    _target_flags(p, t)


def _target_flags(p: argparse.ArgumentParser, t=None, verb: str = "trace") -> None:
    """Container and Kubernetes target flags, shared by runs and recorders."""
    t = t or p.add_argument_group("targets")
    t.add_argument("-c", "--containername", "--container", dest="container", metavar="NAME",
                   help="only the container with this name")
    t.add_argument("-l", "--selector", metavar="SELECTOR",
                   help="only containers whose labels match (key=value[,key2=value2], !=, in, notin)")
    t.add_argument("--local", action="store_true", help=f"{verb} this host even where a kubeconfig is found")
    k = p.add_argument_group("kubernetes (used when a kubeconfig is found, unless --local)")
    k.add_argument("-n", "--namespace", help="pods in this namespace (default: default)")
    k.add_argument("-A", "--all-namespaces", action="store_true",
                   help="pods in every namespace (gadgetbook's own node pods are left out)")
    k.add_argument("-p", "--podname", help="only the pod with this name")
    k.add_argument("--node", help="only pods on this node")
    k.add_argument("--host", action="store_true",
                   help="every process of the nodes (with --node, of one), not pods; needs the right to trace a host")
    k.add_argument("--include-self", action="store_true",
                   help="also gadgetbook's own node pods and their processes (left out by default)")
    k.add_argument("--context", help="kubeconfig context")
    k.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")


def _words(prog: str | None, words: Words | None) -> Words:
    return words or (NOTEBOOK if (prog or "").startswith("%") else TERMINAL)


def gadget_parser(spec: GadgetSpec, prog: str | None = None, words: Words | None = None) -> argparse.ArgumentParser:
    """The flags of one gadget, their help in the words of the front end (a terminal's, by default)."""
    words = _words(prog, words)
    examples = [e.replace("gadgetbook ", f"{words.prefix} ", 1) for e in spec.examples]
    p = FlagParser(
        prog=prog or f"{words.prefix} {spec.name}",
        description=spec.description,
        epilog=("examples:\n  " + "\n  ".join(examples)) if examples else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _run_flags(p, words)
    _param_flags(p, f"{spec.name} parameters", spec.params)
    return p


def _param_flags(p: argparse.ArgumentParser, group: str, params: dict[str, Param]) -> None:
    if params:
        gp = p.add_argument_group(group)
        for prm in params.values():
            if prm.type == "bool":
                gp.add_argument(prm.flag, dest=f"param_{prm.name}", action="store_true", default=prm.default,
                                help=prm.help)
            else:
                gp.add_argument(prm.flag, dest=f"param_{prm.name}", default=prm.default, metavar=prm.type.upper(),
                                help=f"{prm.help} (default: {prm.default})")


def recorder_parser(spec: GadgetSpec, verb: str, prog: str) -> argparse.ArgumentParser:
    """Flags of a recorder's verb: the targets for all, the gadget's params for `start`, a recording id,
    --save and -o for `show` and `stop`."""
    what = {"start": "Start recording the selected containers in the background.",
            "show": "What the recording holds now (it goes on recording).",
            "stop": "End the recording and return what it held.",
            "list": "What is recorded, where, since when, and how much was overwritten."}[verb]
    words = _words(prog, None)
    examples = [e.replace("gadgetbook ", f"{words.prefix} ", 1) for e in spec.examples]
    p = FlagParser(prog=f"{prog} {verb}", description=f"{spec.description}\n\n{verb}: {what}",
                   epilog=("examples:\n  " + "\n  ".join(examples)) if examples else None,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
    _target_flags(p, verb="record" if verb == "start" else "look at")
    if verb == "start":
        _param_flags(p, f"{spec.name} parameters", spec.params)
    else:
        p.add_argument("--id", dest="recording_id", metavar="ID", help="the recording by its id (see list)")
        p.add_argument("-o", "--output", choices=OUTPUTS, default="columns",
                       help=argparse.SUPPRESS if words.notebook else "terminal output")
    if verb in ("show", "stop"):
        p.add_argument("--save", metavar="PATH.parquet", help="also keep the rows in a Parquet file")
    return p


def plain_parser(prog: str, description: str) -> FlagParser:
    """A parser that raises GadgetError in one sentence instead of exiting."""
    return FlagParser(prog=prog, description=description)


def run_parser(prog: str, description: str, params: dict[str, Param], group: str = "parameters") -> FlagParser:
    """The run and target flags every gadget takes, then `params` as flags of their own (programs of one's own)."""
    p = FlagParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    _run_flags(p, _words(prog, None))
    _param_flags(p, group, params)
    return p


def request_of(ns: argparse.Namespace, gadget: str, params: dict[str, Param]) -> RunRequest:
    """The RunRequest a parser of `run_parser` read, its params checked."""
    return _request(gadget, {name: prm.check(getattr(ns, f"param_{name}")) for name, prm in params.items()}, ns)


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
    if not catalog.carries(argv[0]):
        from gadgetbook.usage import COMMAND_WORDS

        hint = did_you_mean(argv[0], [*catalog.names(), *COMMAND_WORDS])
        known = ", ".join(catalog.names())
        front = (prog or "gadgetbook").split()[0]
        raise GadgetError(f"Unknown gadget or command {argv[0]!r}.{hint} Known gadgets: {known}; "
                          f"`{front} --help` lists the commands.")
    spec = catalog.get(argv[0])
    ns = gadget_parser(spec, prog).parse_args(attach_dash_values(spec.params, argv[1:]))
    return request_of(ns, spec.name, spec.params)


def _request(gadget: str, params: dict[str, Any], ns: argparse.Namespace) -> RunRequest:
    return RunRequest(
        gadget=gadget,
        params=params,
        timeout=parse_duration(ns.timeout),
        pid=ns.pid,
        output=ns.output,
        save=ns.save,
        tail=ns.tail,
        ring_size=parse_size(ns.ring_size) if ns.ring_size else None,
        **target_flags(ns),
    )


def parse_investigate(argv: list[str], prog: str = "gadgetbook investigate") -> tuple[RunRequest, dict]:
    """Parse `GADGET,GADGET,... [flags] [--param GADGET.NAME=VALUE ...]`: the shared targets, and params per gadget."""
    p = FlagParser(prog=prog, description="Run several gadgets together on the same targets and join what they see "
                "(the DNS names of peers, the process behind each row).",
                epilog="gadgetbook investigate execsnoop,opensnoop,tcptracer,dns -l app=api --timeout 60")
    p.add_argument("gadgets", metavar="GADGET,GADGET,...", help="the gadgets, comma-separated")
    p.add_argument("--param", action="append", default=[], metavar="GADGET.NAME=VALUE",
                   help="a param of one gadget (opensnoop.failed=true); repeat for more")
    _run_flags(p, _words(prog, None))
    ns = p.parse_args(argv)
    params: dict[str, dict[str, Any]] = {}
    for item in ns.param:
        key, eq, value = item.partition("=")
        gadget, dot, name = key.partition(".")
        if not (eq and dot and gadget and name):
            raise GadgetError(f"{prog}: --param takes GADGET.NAME=VALUE (opensnoop.failed=true), not {item!r}.")
        params.setdefault(gadget, {})[name.replace("-", "_")] = value
    return _request(ns.gadgets, {}, ns), params
