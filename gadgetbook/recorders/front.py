"""A recorder's verbs for the terminal, the notebook and Python: start, show, stop, list.

Where the recordings live is decided as for runs: this host's recorder processes (`--local`, or no
kubeconfig), else the node pods of a cluster. Results: `show` and `stop` return the rows as a DataFrame
(facts in `.attrs`, including what was overwritten), `list` a DataFrame of the recorded containers,
`start` a DataFrame of what it began to record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from gadgetbook.catalog.spec import GadgetSpec
from gadgetbook.errors import GadgetError
from gadgetbook.options import TargetFlags
from gadgetbook.recorders.client import RecorderLink

LIST_COLUMNS = ["id", "node", "target", "namespace", "pod", "container", "state", "since", "recorded", "kept",
                "overwritten", "ends"]


@dataclass(kw_only=True)
class VerbRequest(TargetFlags):
    verb: str
    spec: GadgetSpec
    params: dict[str, Any] = field(default_factory=dict)
    recording_id: str | None = None
    output: str = "columns"
    save: str | None = None

    @property
    def flags(self) -> dict[str, str | None]:
        return {"selector": self.selector, "container": self.container, "namespace": self.namespace,
                "podname": self.podname}

    def describe(self) -> str:
        if self.recording_id:
            return self.recording_id
        parts = [f"{flag} {v}" for flag, v in (("-n", self.namespace), ("-p", self.podname), ("-l", self.selector),
                                               ("-c", self.container)) if v]
        return " ".join(parts) or "every recording"


def parse_verb(spec: GadgetSpec, argv: list[str], prog: str) -> VerbRequest:
    """`start|show|stop|list [flags]`; one sentence for anything wrong."""
    from gadgetbook.kinds import kind_of
    from gadgetbook.options import recorder_parser, target_flags

    verbs = kind_of(spec).verbs
    if argv[:1] in (["-h"], ["--help"]):
        print(f"usage: {prog} {{{','.join(verbs)}}} [flags]   ({prog} VERB --help for its flags)\n\n"
              f"{spec.description}\n\n" + "\n".join(spec.examples))
        raise SystemExit(0)
    if not argv or argv[0] not in verbs:
        got = f" (got {argv[0]!r})" if argv else ""
        raise GadgetError(f"{spec.name} is a recorder: say {prog} {'|'.join(verbs)}{got}.")
    verb = argv[0]
    ns = recorder_parser(spec, verb, prog).parse_args(argv[1:])
    params = {name: prm.check(getattr(ns, f"param_{name}")) for name, prm in spec.params.items()} \
        if verb == "start" else {}
    return VerbRequest(verb=verb, spec=spec, params=params, recording_id=getattr(ns, "recording_id", None),
                       output=getattr(ns, "output", "columns"), save=getattr(ns, "save", None), **target_flags(ns))


def request_from_kwargs(gadget: str, verb: str, kwargs: dict[str, Any]) -> VerbRequest:
    """The same request from Python keywords (selector=, container=, syscalls=, max_age=, id=, save=, ...)."""
    from gadgetbook import catalog

    spec = catalog.get(gadget)
    kw = dict(kwargs)
    target = {k: kw.pop(k) for k in ("selector", "container", "namespace", "all_namespaces", "podname", "node",
                                     "context", "kubeconfig", "local", "save") if k in kw}
    rid = kw.pop("id", None)
    if verb == "start":
        params = spec.checked_params(kw)
    elif kw:
        raise GadgetError(f"{gadget} {verb} takes no {', '.join(sorted(kw))}; those are for start.")
    else:
        params = {}
    return VerbRequest(verb=verb, spec=spec, params=params, recording_id=rid, **target)


# -- where the recordings are --


def _in_cluster(req: VerbRequest) -> bool:
    from gadgetbook.api import Where

    return Where({"local": req.local}, req.cluster_flags()).in_cluster()


def _links(req: VerbRequest) -> tuple[list[RecorderLink], list[str]]:
    """The hosts to ask and sentences about recorders found gone."""
    if not _in_cluster(req):
        from gadgetbook.recorders.local import recorder_links

        return recorder_links()
    from gadgetbook.recorders.cluster import node_links

    return node_links(req.kubeconfig, req.context)


def _matches(req: VerbRequest, info: dict[str, Any]) -> bool:
    if info.get("gadget") != req.spec.name:
        return False
    if req.recording_id:
        return info["id"] == req.recording_id
    given = {k: v for k, v in req.flags.items() if v}
    if not given:
        return True
    flags = info.get("target") or {}
    if all(flags.get(k) == v for k, v in given.items()):
        return True
    # A container asked for by name is found in any recording that holds it.
    return bool(req.container) and set(given) == {"container"} and any(
        c["container"] == req.container for c in info.get("containers", ()))


def _found(req: VerbRequest) -> tuple[list[tuple[RecorderLink, dict]], list[str]]:
    links, notes = _links(req)
    found = []
    for link in links:
        try:
            infos = link.list()
        except (GadgetError, OSError) as exc:
            notes.append(f"{link.node}: {exc}")
            continue
        found += [(link, info) for info in infos if _matches(req, info)]
    return found, notes


def _nothing(req: VerbRequest, notes: list[str]) -> GadgetError:
    gone = (" " + " ".join(notes)) if notes else ""
    if req.recording_id and _in_cluster(req):
        from gadgetbook.recorders.cluster import why_missing

        gone += why_missing(req.recording_id, req.kubeconfig, req.context)
    return GadgetError(f"Nothing is being recorded for {req.describe()}; `{req.spec.name} list` shows what is, "
                       f"`{req.spec.name} start` begins.{gone}")


# -- the verbs --


def carry_out(req: VerbRequest):
    """Carry out a parsed verb; its result for `show_in_notebook` / `print_in_terminal`."""
    if req.verb == "start":
        result = _start(req)
    elif req.verb == "list":
        found, notes = _found(req)
        result = _listing([info for _, info in found], notes)
    else:
        result = _show_or_stop(req)
    result.attrs["output"] = req.output
    return result


def _show_or_stop(req: VerbRequest):
    found, notes = _found(req)
    if not found:
        raise _nothing(req, notes)
    parts = []
    for link, info in found:
        parts.append(link.stop(info["id"]) if req.verb == "stop" else link.show(info["id"]))
    df = _rows(req, parts, notes)
    if req.save:
        from gadgetbook.frames.recording import save

        save(df, req.save)
    return df


def _start(req: VerbRequest):
    req.spec.checked_params(req.params)
    from gadgetbook.kinds import kind_of

    kind_of(req.spec).check(req.params)  # bad settings fail before anything starts
    if not (req.selector or req.container or req.podname or req.namespace or req.all_namespaces):
        raise GadgetError(f"Name the containers to record: -l SELECTOR or -c NAME (-n/-p for pods); "
                          f"{req.spec.name} records per container.")
    found, notes = _found(req) if any(req.flags.values()) else ([], [])
    same = [info for _, info in found if all((info.get("target") or {}).get(k) == v for k, v in req.flags.items())]
    if same:
        info = same[0]
        raise GadgetError(f"{req.describe()} is already being recorded by {info['id']} (since "
                          f"{_clock(info['started'])}); show it, or stop it before starting again.")
    request = {"gadget": req.spec.name, "params": req.params,
               "target": {**req.flags, "description": req.describe()}}
    if _in_cluster(req):
        from gadgetbook.recorders.cluster import start_on_nodes

        infos = start_on_nodes(req, request)
    else:
        from gadgetbook.recorders.local import recorder_links, spawn

        # A container already recorded by another recording is refused: one recorder per container.
        busy = {c["id"]: info["id"] for link in recorder_links()[0] for info in link.list()
                for c in info.get("containers", ()) if c["state"] == "recording"}
        _refuse_busy(req, busy)
        infos = [spawn(request)]
    return _listing(infos, notes, started=True)


def _refuse_busy(req: VerbRequest, busy: dict[str, str]) -> None:
    if not busy:
        return
    from gadgetbook.targets.local import LocalContainers
    from gadgetbook.targets.selector import Selector

    selector = Selector.parse(req.selector) if req.selector else None
    for c in LocalContainers().select(selector, req.container):
        if c.id in busy:
            raise GadgetError(f"Container {c.name} is already being recorded by {busy[c.id]}; show it, or stop "
                              "it before starting again.")


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _listing(infos: list[dict[str, Any]], notes: list[str], started: bool = False):
    import pandas as pd

    rows = []
    for info in infos:
        target = (info.get("target") or {}).get("description", "")
        for c in info.get("containers", ()):
            rows.append({"id": info["id"], "node": c["node"], "target": target, "namespace": c["namespace"],
                         "pod": c["pod"], "container": c["container"], "state": c["state"],
                         "since": pd.Timestamp(c["since"], unit="s"), "recorded": c["recorded"], "kept": c["kept"],
                         "overwritten": c["overwritten"], "ends": pd.Timestamp(info["ends"], unit="s")})
        if not info.get("containers"):
            rows.append({"id": info["id"], "node": info["node"], "target": target, "namespace": "", "pod": "",
                         "container": "", "state": "waiting for containers to start",
                         "since": pd.Timestamp(info["started"], unit="s"), "recorded": 0, "kept": 0, "overwritten": 0,
                         "ends": pd.Timestamp(info["ends"], unit="s")})
    df = pd.DataFrame(rows, columns=LIST_COLUMNS)
    df.attrs.update({"kind": "recorder", "listing": "started" if started else "list", "recordings": infos,
                     "notes": notes})
    return df


def _rows(req: VerbRequest, parts: list[tuple[dict, dict]], notes: list[str]):
    from gadgetbook.frames.dataframe import to_dataframe
    from gadgetbook.kinds import kind_of

    kind = kind_of(req.spec)
    columns = kind.columns()
    batches = [b for b, _ in parts if len(b.get("seq", ()))] or [kind.empty()]
    infos = [i for _, i in parts]
    containers = [c for i in infos for c in i.get("containers", ())]
    attrs = {
        "gadget": req.spec.name, "kind": kind.name, "verb": req.verb, "params": infos[0].get("params", {}),
        "targets": ", ".join(sorted({(i.get("target") or {}).get("description", "") for i in infos})),
        "recordings": [i["id"] for i in infos], "nodes": sorted({i["node"] for i in infos}),
        "architectures": infos[0].get("architectures", []),
        "containers": containers, "start": min(i["started"] for i in infos), "end": time.time(),
        "overwritten": sum(c["overwritten"] for c in containers),
        "lost": {i["node"]: i.get("births_missed", 0) for i in infos}, "errors": {}, "notes": notes,
    }
    df = to_dataframe(batches, columns, attrs, kind.categorical)
    if len(df) and len(parts) > 1:
        df = df.sort_values("timestamp", kind="stable", ignore_index=True)
    df.attrs.update(attrs)
    df.attrs["events"] = len(df)
    return df


# -- showing results --


def summary(df) -> str:
    """One line: rows, containers, and always how many records were overwritten."""
    a = df.attrs
    if a.get("listing"):
        n = len({r for r in df["id"]})
        what = "started" if a["listing"] == "started" else "recording"
        return f"{n} {what}" + ("" if n == 1 else "s") + f", {int((df.container != '').sum())} containers"
    per = ", ".join(f"{c['container'] or c['id'][:12]} {c['overwritten']:,}" for c in a.get("containers", ()))
    verb = {"stop": "stopped", "show": "still recording"}.get(a.get("verb"), "")
    return (f"{a.get('gadget', 'traceloop')}: {len(df):,} rows from {len(a.get('containers', ())):,} containers; "
            f"{a.get('overwritten', 0):,} overwritten" + (f" ({per})" if per else "") + (f"; {verb}" if verb else ""))


def print_in_terminal(df, out: TextIO, err: TextIO) -> int:
    """Rows (or the listing) on stdout, aligned or one JSON object per line; notes and the summary on stderr."""
    for note in df.attrs.get("notes", ()):
        print(f"# {note}", file=err)
    json_lines = df.attrs.get("output") == "json"
    if df.attrs.get("listing") or json_lines:
        view = df.copy()  # JSON lines carry every column
        if "duration" in view:
            view["duration"] = view["duration"].dt.total_seconds() * 1e6  # microseconds
    else:
        view = df[["timestamp", "container", "pid", "tid", "comm", "syscall", "args", "ret", "error",
                   "duration"]].copy()
        view["duration"] = view["duration"].map(lambda d: "" if d != d else f"{d.value / 1000:.1f}us")
    if json_lines:
        if len(view):
            out.write(view.to_json(orient="records", lines=True, date_format="iso", date_unit="us"))
    elif len(view):
        if "timestamp" in view:
            view["timestamp"] = view["timestamp"].dt.strftime("%H:%M:%S.%f")
        out.write(view.to_string(index=False, max_colwidth=80) + "\n")
    print(summary(df), file=err)
    return 0


def show_in_notebook(df, table: bool = True) -> None:
    """The notes, the DataFrame (unless the notebook shows it itself), the summary, and the timeline."""
    import html

    from IPython.display import HTML, display

    for note in df.attrs.get("notes", ()):
        display(HTML(f"<i>{html.escape(note)}</i>"))
    if table:
        display(df)
    display(HTML(f"<b>{summary(df)}</b>"))
    if not df.attrs.get("listing") and len(df):
        from types import SimpleNamespace

        from gadgetbook.frames.syscalls import by_family
        from gadgetbook.views.timeline_image import render_png

        # The investigations' static timeline: a lane per container, a colour per syscall family.
        display(render_png(SimpleNamespace(frames=by_family(df), span=None), width=1000))


class RecorderVerbs:
    """A recorder's verbs from Python, with the CLI's flags as keywords:
    `start(selector=..., container=..., syscalls=..., entries=..., max_age=...)`, `show(...)`, `stop(...)`,
    `list()`; `id=` names one recording, `save=` keeps the rows of show/stop in a Parquet file."""

    def __init__(self, gadget: str) -> None:
        self.gadget = gadget

    def start(self, **kwargs: Any):
        return carry_out(request_from_kwargs(self.gadget, "start", kwargs))

    def show(self, **kwargs: Any):
        return carry_out(request_from_kwargs(self.gadget, "show", kwargs))

    def stop(self, **kwargs: Any):
        return carry_out(request_from_kwargs(self.gadget, "stop", kwargs))

    def list(self, **kwargs: Any):
        return carry_out(request_from_kwargs(self.gadget, "list", kwargs))

    def __repr__(self) -> str:
        return f"<{self.gadget} recorder: .start(...), .show(...), .stop(...), .list()>"
