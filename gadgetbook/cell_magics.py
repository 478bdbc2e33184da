"""Cell magics for programs of one's own and for the node: %%bpf (CO-RE C), %%bcc (bcc's C) and %%node NODE
(the cell's Python in an IPython kernel on that node). They parse flags and call the library."""

from __future__ import annotations

import shlex
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from traitlets import Float, Int

from gadgetbook.errors import GadgetError


def _warning(text: str) -> None:
    """A warning the cell's output shows before the run (stderr: set apart from the results)."""
    print(f"warning: {text}", file=sys.stderr, flush=True)


def _argv(line: str, magic: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"{magic}: cannot split the line ({exc}); check the quotes.") from None


def _program_args(magic: str, line: str, params: dict, description: str, **extra: str):
    """The flags of %%bpf or %%bcc: (namespace, keywords for the API), or None after --help. `extra` names
    more options (name -> help)."""
    from gadgetbook.options import attach_dash_values, request_of, run_parser

    argv = _argv(line, magic)
    parser = run_parser(magic, description, params, group="program")
    parser.add_argument("--name", metavar="VAR", help="the variable that receives the result")
    for option, text in extra.items():
        parser.add_argument(f"--{option}", metavar=option.upper(), help=text)
    try:
        ns = parser.parse_args(attach_dash_values(params, argv))
    except SystemExit:
        return None
    if ns.name is not None and not ns.name.isidentifier():
        raise GadgetError(f"--name {ns.name!r} is not a Python variable name; use letters, digits and _.")
    req = request_of(ns, ns.name or "cell", params)
    return ns, req.run_kwargs() | {"name": ns.name, "wants_cluster": req.wants_cluster()}


@magics_class
class CellMagics(Magics):
    """%%bpf, %%bcc and %%node."""

    max_live_rows = Int(20, config=True, help="Newest rows the live table shows while a program runs.")
    refresh = Float(0.25, config=True, help="Seconds between live table updates.")

    @cell_magic
    def bpf(self, line: str, cell: str):
        """Compile the cell, a CO-RE BPF C program, and run it like a gadget: its ring buffer's records
        become a DataFrame, its maps DataFrames after the run.

        Usage::

            %%bpf [--name VAR] [--timeout 5] [--event STRUCT] [--interval 1] [--hist MAP]
                  [-c NAME | -l SELECTOR | --pid PID | --local | -n NS -p POD --node NODE ...]
            #include "vmlinux.h"
            #include <bpf/bpf_helpers.h>
            #include "gadget.h"          /* optional: gadget_should_discard(), gadget_reserve(), ... */
            ...

        The record struct is the one struct the cell defines (or --event NAME); when it starts with
        gadget.h's `struct gadget_process`, rows carry the common columns (timestamp, node, namespace,
        pod, container, pid, comm, ...). Hash, array and per-CPU maps come back as DataFrames (per-CPU
        values summed); maps whose value is `struct { u32 slots[N]; }`, or whose name says hist/dist and
        whose key is the slot (or named with --hist), are log2 histograms, drawn as bar charts.
        Container and pod targets need the program to call gadget_should_discard().

        The result (a ProgramResult: .events, .maps, result["map"]) is the cell's value, or goes to
        --name VAR. In a cluster the cell is compiled here against each node's kernel BTF and the object
        runs on the node: nodes need no compiler. `%config GadgetMagics.local = True` keeps programs on this
        host, as it keeps gadgets.
        """
        from gadgetbook.programs.spec import PROGRAM_PARAMS

        try:
            parsed = _program_args("%%bpf", line, PROGRAM_PARAMS, "Compile and run a CO-RE BPF C program.",
                                   event="the struct of the ring buffer's records")
            if parsed is None:  # --help printed its text
                return None
            ns, kwargs = parsed
            from gadgetbook.programs.api import start

            if not kwargs.pop("wants_cluster") and self._local_by_config():
                kwargs["local"] = True
            run = start(cell, **kwargs, event=ns.event)
            for note in run.kind.spec.warnings:
                _warning(f"the compiler warns: {note}")
            return self._finish(run, ns.name)
        except GadgetError as exc:
            raise UsageError(str(exc)) from None

    @cell_magic
    def bcc(self, line: str, cell: str):
        """Run the cell, a bcc program (bcc's C: TRACEPOINT_PROBE, BPF_PERF_OUTPUT, BPF_HASH, ... with no
        Python), on this host or on the nodes of pods: its perf or ring buffer's records become a DataFrame
        whose columns are the record struct's fields, its tables DataFrames after the run.

        Usage::

            %%bcc [--name VAR] [--timeout 5] [--events NAME] [--tables A,B] [--hist NAME] [--interval 1]
                  [-c NAME | -l SELECTOR | --pid PID | --local | -n NS -p POD --node NODE ...]
            BPF_PERF_OUTPUT(events);
            TRACEPOINT_PROBE(syscalls, sys_enter_openat) { ... events.perf_submit(args, &e, sizeof(e)); ... }

        bcc compiles against the running kernel's headers (/lib/modules/$(uname -r)/build): with none, the
        cell says how to get them and nothing runs; with another kernel's, it warns that tracepoint
        arguments are right but reads of kernel structs may not be. Container and process targets are
        filtered by a prelude the magic adds (cgroup id and pid, which need no kernel struct): every
        TRACEPOINT_PROBE calls gadget_should_discard() first, and other probes may call it too.
        bcc runs in a child process of the Python that has it (Debian's python3), not in this kernel.
        In a cluster the cell goes to each node's gadgetbook pod, whose bcc compiles it against the node's
        own headers: deploy pods that carry bcc with `%gadget deploy --bcc`.
        """
        from gadgetbook.programs.spec import BCC_PARAMS

        try:
            parsed = _program_args("%%bcc", line, BCC_PARAMS, "Run a bcc program on this host or on pods' nodes.")
            if parsed is None:  # --help printed its text
                return None
            ns, kwargs = parsed
            if not kwargs.pop("wants_cluster") and self._local_by_config():
                kwargs["local"] = True
            from gadgetbook.programs.api import start_bcc

            run = start_bcc(cell, **kwargs, warn=_warning)
            return self._finish(run, ns.name)
        except GadgetError as exc:
            raise UsageError(str(exc)) from None

    @cell_magic
    def node(self, line: str, cell: str):
        """Run the cell's Python in an IPython kernel inside NODE's gadgetbook pod (privileged, the node's
        processes in sight, gadgetbook installed): for the digging no gadget does.

        Usage::

            %%node NODE [--pull NAME[,NAME...]] [--timeout SECONDS] [--context CTX] [--kubeconfig PATH]
            print(open("/proc/1/cgroup").read())
            df = gadgetbook.run("opensnoop", timeout=2)

        Output (text, rich displays, errors) shows here as it comes. The kernel lives on between cells
        for the same node. Names given to --pull come back into this notebook's namespace (pickled on
        the node: a DataFrame keeps its dtypes and attrs). The kernel is reached through the API
        server's port-forward with the node pods' token, as gadgets are.
        """
        from gadgetbook.options import parse_duration, plain_parser

        parser = plain_parser("%%node", "Run the cell in a kernel on a node's gadgetbook pod.")
        parser.add_argument("node", metavar="NODE", help="the node's name")
        parser.add_argument("--pull", default="", metavar="NAMES", help="variables to bring back, comma-separated")
        parser.add_argument("--timeout", metavar="DURATION", help="interrupt the cell after this long")
        parser.add_argument("--context", help="kubeconfig context")
        parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
        try:
            try:
                ns = parser.parse_args(_argv(line, "%%node"))
            except SystemExit:
                return None
            from gadgetbook.client.node_kernel import on_node

            pull = tuple(n.strip() for n in ns.pull.split(",") if n.strip())
            values = on_node(ns.node, cell, pull=pull, kubeconfig=ns.kubeconfig, context=ns.context,
                             timeout=parse_duration(ns.timeout))
        except GadgetError as exc:
            raise UsageError(str(exc)) from None
        self.shell.user_ns.update(values)
        return None

    def _local_by_config(self) -> bool:
        """`%config GadgetMagics.local = True`: programs too trace this host, even where a kubeconfig is found."""
        gadget = self.shell.magics_manager.registry.get("GadgetMagics")
        return bool(getattr(gadget, "local", False))

    def _finish(self, run, name: str | None):
        """Watch the run live (in a notebook), then show its result; with --name, store it there instead of
        making it the cell's value."""
        view = None
        try:
            if getattr(self.shell, "kernel", None) is not None:
                from gadgetbook.views.live import watch

                view = watch(run, max_rows=self.max_live_rows, refresh=self.refresh, table=run.kind.live_view())
            else:  # a terminal IPython: no widgets, Ctrl-C ends the run
                run.wait()
        finally:
            if run.running:
                run.stop()
        result = run.conclude()
        if view is not None:
            view.finish(result, "all" if name is not None else "nothing")
        else:
            print(result.summary())
        if name is None:
            return result
        self.shell.user_ns[name] = result
        return None


def load_cell_magics(ipython) -> None:
    """Register %%bpf, %%bcc and %%node (called by `%load_ext gadgetbook`)."""
    ipython.register_magics(CellMagics)
