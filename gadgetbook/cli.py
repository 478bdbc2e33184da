"""The terminal front end: `gadgetbook list | describe GADGET | GADGET [flags]`."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Sequence

from gadgetbook.errors import GadgetError

COMMANDS = ("deploy", "undeploy", "status", "manifests")
# Shown from the first row on, even when the first batch leaves them empty (later rows may fill them).
_ALWAYS_SHOWN = frozenset({"container", "comm", "pid"})


def describe(name: str) -> str:
    """Params, columns and hooks of one gadget, as text."""
    from gadgetbook import catalog
    from gadgetbook.kinds import kind_of

    spec = catalog.get(name)
    lines = [f"{spec.name}: {spec.description}", "", "Parameters:"]
    lines += [f"  {p.flag:<22} {p.help} (default: {p.default})" for p in spec.params.values()] or ["  (none)"]
    lines += ["", "Columns:", *kind_of(spec).describe_columns()]
    hooks = [" | ".join(g.programs) + (" (optional)" if g.optional else "") for g in spec.hooks]
    if hooks:
        lines += ["", "Hook alternatives (first available is used):"] + [f"  {h}" for h in hooks]
    return "\n".join(lines)


class _Printer:
    """Rows on stdout: aligned columns in the notebook's order and cells, or one JSON object per line."""

    def __init__(self, columns: list[str], output: str, per_batch_header: bool = False, kind=None) -> None:
        from gadgetbook.views.table import Layout

        self.output = output
        self.per_batch_header = per_batch_header  # a top gadget: each batch is one interval's table
        self.layout = Layout.for_kind(kind, columns)
        self.columns = columns  # -o columns: chosen from the first batch
        self.widths: dict[str, int] = {}

    def batch(self, batch) -> None:
        if self.output == "json":
            self._json(batch)
            return
        from gadgetbook.views.table import filled

        if not self.widths:
            self.columns = self.layout.shown(filled(batch, self.layout.order) | _ALWAYS_SHOWN)
        # A terminal has no hover: cut text is printed whole (times stay short).
        rows = [[c.title if c.title and c.text.endswith("…") else c.text for c in row]
                for row in self.layout.cells(batch, self.columns)]
        out = sys.stdout
        if self.per_batch_header and self.widths:
            out.write("\n" + self._line([c.upper() for c in self.columns]) + "\n")
        if not self.widths:
            # Widths from the first batch, capped; later rows may push a column wider.
            self.widths = {c: min(max([len(c), *(len(r[i]) for r in rows)]), 40)
                           for i, c in enumerate(self.columns)}
            out.write(self._line([c.upper() for c in self.columns]) + "\n")
        for row in rows:
            out.write(self._line(row) + "\n")
        out.flush()

    def _json(self, batch) -> None:
        import numpy as np

        from gadgetbook.frames.coded import Coded

        values = {c: batch[c].values() if isinstance(batch[c], Coded) else batch[c] for c in self.columns}
        if "timestamp" in values:
            values["timestamp"] = np.datetime_as_string(values["timestamp"], unit="us")
        for row in zip(*(values[c].tolist() for c in self.columns)):
            sys.stdout.write(json.dumps(dict(zip(self.columns, map(_jsonable, row)))) + "\n")
        sys.stdout.flush()

    def _line(self, cells: list[str]) -> str:
        last = len(cells) - 1
        return " ".join(cell if i == last else cell.ljust(self.widths[c])
                        for i, (c, cell) in enumerate(zip(self.columns, cells)))


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool) and value > 2**53:
        return str(value)
    return value


def stop_on_signals() -> threading.Event:
    """Ctrl-C and SIGTERM ask the run to stop; the printing loop notices within 0.1 s, even when the signal
    lands while the gadget is still being attached."""
    stop_requested = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_requested.set())
    return stop_requested


def print_until_stopped(run, printer: _Printer | None, stop_requested: threading.Event) -> None:
    """Print each batch as it comes (when there is a printer) until the run ends or a stop is asked for."""
    try:
        for batch in run.batches():
            if batch is not None and printer is not None:
                printer.batch(batch)
            if stop_requested.is_set() and run.running:
                run.stop()
    finally:
        if run.running:
            run.stop()


def run_gadget(argv: Sequence[str]) -> int:
    from gadgetbook.api import start
    from gadgetbook.options import parse_run

    req = parse_run(list(argv), prog=f"gadgetbook {argv[0]}")
    stop_requested = stop_on_signals()
    run = start(req.gadget, **req.run_kwargs())
    kind = run.kind
    # Kinds with a result of their own (profile) print it at the end, not row by row.
    printer = (None if kind.terminal == "result"
               else _Printer(run.columns, req.output, per_batch_header=kind.terminal == "intervals", kind=kind))
    print_until_stopped(run, printer, stop_requested)
    result = run.conclude(want_result=printer is None)
    if printer is None:
        return kind.print_result(result) or (1 if run.save_notice else 0)
    notes = result.attrs.get("notes", []) if result is not None else run.notes(run.counters.events)
    print("\n".join([run.summary(), *notes]), file=sys.stderr)
    # A recording not where it was asked (its notes say where): a script must notice.
    return 1 if run.counters.errors or run.save_notice else 0


def run_verbs(argv: Sequence[str]) -> int | None:
    """A gadget driven by verbs (a recorder); None when the gadget is run instead."""
    from gadgetbook import catalog
    from gadgetbook.kinds import kind_of

    if not catalog.carries(argv[0]):
        return None
    kind = kind_of(catalog.get(argv[0]))
    if not kind.verbs:
        return None
    try:
        result = kind.command(list(argv[1:]), prog=f"gadgetbook {argv[0]}")
    except SystemExit as exc:  # --help printed its text
        return int(exc.code or 0)
    return kind.print_result(result)


def run_investigate(argv: Sequence[str]) -> int:
    """Several gadgets on the same targets: rows as JSON lines with -o json, a summary per gadget at the end."""
    from gadgetbook.investigation import start_investigation
    from gadgetbook.options import parse_investigate

    try:
        req, params = parse_investigate(list(argv))
    except SystemExit as exc:  # --help printed its text
        return int(exc.code or 0)
    stop_requested = stop_on_signals()
    live = start_investigation(req.gadget, params=params, **req.run_kwargs())
    printers = {g: _Printer(r.columns, "json") for g, r in live.runs.items()} if req.output == "json" else {}
    streams = {g: r.batches(wait=0.02) for g, r in live.runs.items()}
    try:
        while streams:
            for g, stream in list(streams.items()):
                batch = next(stream, StopIteration)
                if batch is StopIteration:
                    del streams[g]
                elif batch is not None and g in printers:
                    for col in ("gadget",):
                        batch = {col: _constant(g, batch), **batch}
                    printers[g].columns = ["gadget", *live.runs[g].columns]
                    printers[g].batch(batch)
            if stop_requested.is_set():
                live.stop()
    finally:
        live.stop()
    inv = live.conclude()
    print(inv.summary(), file=sys.stderr)
    return 1 if inv.failed else 0


def _constant(value: str, batch):
    import numpy as np

    from gadgetbook.frames.coded import Coded

    n = len(next(iter(batch.values())))
    return Coded(np.zeros(n, np.int32), np.array([value], dtype=object))


def run_diff(argv: Sequence[str]) -> int:
    from gadgetbook.compare.diff import diff

    if len(argv) != 2 or argv[0].startswith("-"):
        raise GadgetError("Name two recordings to compare: gadgetbook diff BEFORE AFTER.")
    result = diff(argv[0], argv[1])
    print(result.summary())
    return 0


def run_check(argv: Sequence[str]) -> int:
    from gadgetbook.policy.network import check_network_policy

    if len(argv) != 3 or argv[0] != "network-policy":
        raise GadgetError("Check policies against a recording: gadgetbook check network-policy POLICY.yaml RECORDING.")
    check = check_network_policy(argv[1], argv[2])
    for row in check.refused.itertuples(index=False):
        print(f"{row.timestamp}  {row.client} -> {row.server}:{row.port}  refused by {row.refused_by} "
              f"({row.policies})")
    print(check.summary(), file=sys.stderr)
    return 1 if len(check.refused) else 0


def run_advise(argv: Sequence[str]) -> int:
    from gadgetbook.advise.request import advise, parse_advise

    try:
        req = parse_advise(list(argv))
    except SystemExit as exc:  # --help printed its text
        return int(exc.code or 0)
    advice = advise(req)
    for note in advice.notes:
        print(f"# {note}", file=sys.stderr)
    print(advice.render(req.output), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help", "help"):
            from gadgetbook.usage import TERMINAL, overview_text

            print(overview_text(TERMINAL))
            return 0 if argv else 2
        if argv[0] == "list":
            from gadgetbook import catalog

            for name in catalog.names():
                print(f"{name:<14} {catalog.get(name).description}")
            return 0
        if argv[0] in COMMANDS:
            from gadgetbook.kube.commands import run_command

            run_command(argv)
            return 0
        if argv[0] == "describe":
            if len(argv) != 2:
                raise GadgetError("Name one gadget to describe: gadgetbook describe GADGET.")
            print(describe(argv[1]))
            return 0
        if argv[0] == "advise":
            return run_advise(argv[1:])
        if argv[0] == "investigate":
            return run_investigate(argv[1:])
        if argv[0] == "diff":
            return run_diff(argv[1:])
        if argv[0] == "check":
            return run_check(argv[1:])
        if argv[0] in ("bpf", "bcc"):
            from gadgetbook.programs.cli import run_program

            return run_program(argv)
        verbs = run_verbs(argv)
        return run_gadget(argv) if verbs is None else verbs
    except GadgetError as exc:
        print(f"gadgetbook: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
