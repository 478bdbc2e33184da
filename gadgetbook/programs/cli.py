"""`gadgetbook bpf FILE.bpf.c [flags]` and `gadgetbook bcc FILE.c [flags]`: a program of one's own from a terminal,
its records printed as they come and its maps when it ends."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from gadgetbook.errors import GadgetError


def run_program(argv: Sequence[str]) -> int:
    from gadgetbook.cli import _Printer, print_until_stopped, stop_on_signals
    from gadgetbook.options import attach_dash_values, request_of, run_parser
    from gadgetbook.programs import api
    from gadgetbook.programs.spec import BCC_PARAMS, PROGRAM_PARAMS

    which, rest = argv[0], list(argv[1:])
    params = PROGRAM_PARAMS if which == "bpf" else BCC_PARAMS
    what = "a CO-RE BPF C program" if which == "bpf" else "a bcc program"
    parser = run_parser(f"gadgetbook {which}", f"Compile and run {what} from a file.", params, group="program")
    parser.add_argument("file", metavar="FILE", help="the program's source")
    if which == "bpf":
        parser.add_argument("--event", metavar="STRUCT", help="the struct of the ring buffer's records")
    try:
        ns = parser.parse_args(attach_dash_values(params, rest))
    except SystemExit as exc:  # --help printed its text
        return int(exc.code or 0)
    try:
        source = Path(ns.file).read_text()
    except OSError as exc:
        raise GadgetError(f"Cannot read {ns.file}: {exc.strerror}.") from None
    name = Path(ns.file).name.split(".")[0]
    kwargs = request_of(ns, name, params).run_kwargs() | {"name": name}
    stop_requested = stop_on_signals()
    if which == "bpf":
        run = api.start(source, **kwargs, event=ns.event)
        for note in run.kind.spec.warnings:
            print(f"warning: the compiler warns: {note}", file=sys.stderr)
    else:
        run = api.start_bcc(source, **kwargs, warn=lambda text: print(f"warning: {text}", file=sys.stderr))
    print_until_stopped(run, _Printer(run.columns, ns.output) if run.columns else None, stop_requested)
    result = run.conclude()
    for map_name, df in result.maps.items():
        print(f"\n{map_name}:\n{df.drop(columns=['node']).to_string(index=False) if len(df) else '(empty)'}")
    print(result.summary(), file=sys.stderr)
    return 1 if result.attrs.get("errors") else 0
