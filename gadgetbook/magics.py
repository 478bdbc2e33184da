"""The %gadget line magic: the CLI's flags in a notebook, live widgets while a gadget runs, DataFrames after.

`%load_ext gadgetbook` registers it (`load_ipython_extension` below); the magic parses and calls the library.
"""

from __future__ import annotations

import ast
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from traitlets import Bool, Float, Int, observe

import gadgetbook
from gadgetbook.errors import GadgetError


@magics_class
class GadgetMagics(Magics):
    """%gadget: run eBPF gadgets from a notebook."""

    timeout = Float(None, allow_none=True, config=True,
                    help="Default --timeout in seconds for runs that give none; None runs until stopped.")
    max_live_rows = Int(20, config=True, help="Newest rows the live table shows while a gadget runs.")
    refresh = Float(0.25, config=True, help="Seconds between live table updates.")
    preview_rows = Int(20, config=True, help="Rows of the final table; longer results show head and tail, "
                                             "and an interactive table beneath.")
    local = Bool(False, config=True, help="Trace this host even where a kubeconfig is found (as --local does).")

    @observe("preview_rows")
    def _preview_rows_changed(self, change) -> None:
        from gadgetbook.views.result import SETTINGS

        SETTINGS["preview_rows"] = max(2, int(change["new"]))

    @line_magic
    def gadget(self, line: str):
        """Run an eBPF gadget and return its events as a pandas DataFrame.

        %gadget list                        the gadgets this installation carries
        %gadget describe GADGET             parameters, columns and hooks
        %gadget GADGET [flags]              run it; %gadget GADGET --help lists its flags
        %gadget replay PATH.parquet         a recording, without a kernel or root
        %gadget advise network-policy -l SELECTOR [--timeout 30s] [--file PATH.yaml]
        %gadget advise capabilities -l SELECTOR [--timeout 30s] [--from PATH.parquet]
        %gadget advise seccomp-profile -l SELECTOR [--timeout 30s | --from PATH.parquet]
        %gadget traceloop start|show|stop|list [-l SELECTOR | -c NAME] [--syscalls open,connect]
                                            a flight recorder of syscalls per container
        %gadget investigate G1,G2,... [flags]  several gadgets on the same targets: an Investigation
        %gadget diff BEFORE AFTER           what is new or gone per workload between two recordings
        %gadget check network-policy POLICY.yaml RECORDING
                                            the recorded connections the policies would refuse
        %gadget deploy | undeploy | status  gadgetbook's node pods in a Kubernetes cluster

        Examples:
            execs = %gadget execsnoop --timeout 10
            %gadget tcptracer -n shop -l app=api --timeout 30      (pods, on their nodes)
            %gadget opensnoop --failed --local --timeout 10 --save runs/open.parquet

        A run goes to the cluster when a kubeconfig is found, else to this host; its
        header says which. While it runs, a live table shows the newest rows; Stop (or
        the notebook's interrupt button) ends it and keeps what arrived. A bare call
        displays the DataFrame (and leaves it in `_`).

        Defaults for the notebook, with %config:
            %config GadgetMagics.local = True        this host, even with a kubeconfig
            %config GadgetMagics.timeout = 10        default --timeout (seconds)
            %config GadgetMagics.max_live_rows = 20  newest rows in the live table
            %config GadgetMagics.refresh = 0.25      seconds between live updates
            %config GadgetMagics.preview_rows = 20   rows of the final table
        """
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%gadget: cannot split the line ({exc}); check the quotes.") from None
        try:
            return self._dispatch(argv)
        except GadgetError as exc:
            raise UsageError(str(exc)) from None

    def _dispatch(self, argv: list[str]):
        from IPython.display import display

        if not argv or argv[0] in ("help", "-h", "--help"):
            from gadgetbook.usage import NOTEBOOK, overview_html, overview_text

            display({"text/plain": overview_text(NOTEBOOK), "text/html": overview_html(NOTEBOOK)}, raw=True)
            return None
        if argv[0] == "list":
            from gadgetbook import catalog

            for name in catalog.names():
                print(f"{name:<14} {catalog.get(name).description}")
            return None
        if argv[0] == "describe":
            if len(argv) != 2:
                raise GadgetError("Name one gadget to describe: %gadget describe GADGET.")
            print(gadgetbook.describe(argv[1]))
            return None
        if argv[0] in ("deploy", "undeploy", "status", "manifests"):
            from gadgetbook.kube.commands import run_command

            run_command(argv, prog_prefix="%gadget")
            return None
        if argv[0] == "replay":
            if len(argv) != 2:
                raise GadgetError("Name one recording to replay: %gadget replay PATH.parquet.")
            from gadgetbook.kinds import recorded_kind
            from gadgetbook.views.result import register, show_result

            result = gadgetbook.replay(argv[1], show=False)
            if not hasattr(result, "attrs"):  # a saved investigation shows itself
                self._show_investigation(result)
                return result
            kind = recorded_kind(result.attrs)
            if kind.live_view() is None:  # a result that shows itself (a Profile), once
                if not self._result_displayed():
                    kind.show(result)
            elif not self._result_displayed():  # a bare call's result is displayed by IPython, in the same view
                show_result(register(result))
            else:
                register(result)
            return result
        if argv[0] == "advise":
            return self._advise(argv[1:])
        if argv[0] == "investigate":
            return self._investigate(argv[1:])
        if argv[0] in ("diff", "check"):
            from gadgetbook.compare.diff import diff
            from gadgetbook.policy.network import check_network_policy

            if argv[0] == "diff" and len(argv) == 3:
                return diff(argv[1], argv[2])
            if argv[0] == "check" and len(argv) == 4 and argv[1] == "network-policy":
                return check_network_policy(argv[2], argv[3])
            raise GadgetError("Use %gadget diff BEFORE AFTER, or %gadget check network-policy POLICY.yaml RECORDING.")
        return self._verbs(argv) if self._has_verbs(argv[0]) else self._run(argv)

    @staticmethod
    def _has_verbs(gadget: str) -> bool:
        from gadgetbook import catalog
        from gadgetbook.kinds import kind_of

        return catalog.carries(gadget) and bool(kind_of(catalog.get(gadget)).verbs)

    def _verbs(self, argv: list[str]):
        """A recorder's verb: carried out, then shown by its kind (table, summary, timeline)."""
        from gadgetbook import catalog
        from gadgetbook.kinds import kind_of

        kind = kind_of(catalog.get(argv[0]))
        try:
            result = kind.command(argv[1:], prog=f"%gadget {argv[0]}")
        except SystemExit:  # --help printed its text
            return None
        kind.show(result, table=not self._result_displayed())
        return result

    def _investigate(self, argv: list[str]):
        """Counters per gadget while it runs, then the Investigation (timeline, tables) is shown and returned."""
        from gadgetbook.investigation import investigate
        from gadgetbook.options import parse_investigate

        try:
            req, params = parse_investigate(argv, prog="%gadget investigate")
        except SystemExit:  # --help printed its text
            return None
        kwargs = req.run_kwargs()
        if req.timeout is None and self.timeout:
            kwargs["timeout"] = self.timeout
        if self.local and not req.wants_cluster():
            kwargs["local"] = True

        def on_start(live):
            if getattr(self.shell, "kernel", None) is not None:
                from gadgetbook.views.investigation_live import watch_investigation

                watch_investigation(live, refresh=self.refresh)
            else:
                live.wait()

        inv = investigate(req.gadget, params=params, on_start=on_start, **kwargs)
        self._show_investigation(inv)
        return inv

    def _show_investigation(self, inv) -> None:
        if getattr(self.shell, "kernel", None) is not None:
            inv.show()
        else:
            print(inv.summary())

    def _advise(self, argv: list[str]):
        """Watch with the live table, then show the advice (YAML with a download link) and return it."""
        from IPython.display import display

        from gadgetbook.advise.request import advise, parse_advise

        try:
            req = parse_advise(argv, prog="%gadget advise")
        except SystemExit:  # --help printed its text
            return None
        if self.local and not (req.kubeconfig or req.context):
            req.local = True
        views = []

        def on_run(run):
            if getattr(self.shell, "kernel", None) is not None:
                from gadgetbook.views.live import watch

                views.append(watch(run, max_rows=self.max_live_rows, refresh=self.refresh))
            else:
                run.wait()

        advice = advise(req, on_run=on_run)
        for view in views:
            view.finish(advice.events, show="summary")
        if not self._result_displayed():  # a bare call's result is displayed by IPython itself
            display(advice)
        return advice

    def _run(self, argv: list[str]):
        from gadgetbook.options import parse_run

        try:
            req = parse_run(argv, prog=f"%gadget {argv[0]}")
        except SystemExit:  # --help printed its text
            return None
        kwargs = req.run_kwargs()
        if req.timeout is None and self.timeout:
            kwargs["timeout"] = self.timeout
        if self.local and not req.wants_cluster():
            kwargs["local"] = True
        run = gadgetbook.start(req.gadget, **kwargs)
        import pandas  # noqa: F401  (loaded now, after attach: decoding then uses its hash tables)

        table = run.kind.live_view()
        if table is None:
            return self._run_for_result(run)
        if getattr(self.shell, "kernel", None) is not None:
            from gadgetbook.views.live import watch

            view = watch(run, max_rows=self.max_live_rows, refresh=self.refresh, table=table)
        else:  # a terminal IPython: no widgets, Ctrl-C ends the run
            view = None
            run.wait()
        for _ in range(3):
            try:
                return self._finish(run, view)
            except KeyboardInterrupt:
                # A Stop click interrupts the kernel; one that lands after the run has
                # already ended must not lose the result.
                if view is None or not view.stop_requested:
                    raise
        return self._finish(run, view)

    def _finish(self, run, view):
        from gadgetbook.views.result import register

        df = register(run.conclude())
        if view is not None:
            view.finish(df, show="nothing" if self._result_displayed() else "all")
        else:
            print("\n".join([run.summary(), *df.attrs.get("notes", [])]))
        return df

    def _run_for_result(self, run):
        """Kinds without a live view (profile): wait, then let the kind show the result."""
        from gadgetbook.views.summary import where

        print(f"{run.gadget}{where({'mode': run.mode, 'targets': run.targets})}: running"
              + (f" for {run.timeout:g} s" if run.timeout else " until interrupted") + "...")
        run.wait()
        result = run.conclude()
        if not self._result_displayed():  # else IPython shows the returned result: once is enough
            run.kind.show(result)
        return result

    def _result_displayed(self) -> bool:
        """True when the running cell ends in a bare %gadget call, whose DataFrame IPython will display."""
        kernel = getattr(self.shell, "kernel", None)
        try:
            code = kernel.get_parent("shell")["content"]["code"] if kernel is not None else None
        except (AttributeError, KeyError, TypeError):
            code = None
        if not code or code.rstrip().endswith(";"):
            return False
        try:
            tree = ast.parse(self.shell.transform_cell(code))
        except SyntaxError:
            return False
        last = tree.body[-1] if tree.body else None
        return (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
                and getattr(last.value.func, "attr", "") == "run_line_magic"
                and bool(last.value.args) and getattr(last.value.args[0], "value", None) == "gadget")


def load_ipython_extension(ipython) -> None:
    """`%load_ext gadgetbook`: register the %gadget magics, the result view for the DataFrames they return, and
    the cell magics %%bpf, %%bcc and %%node."""
    from gadgetbook.cell_magics import load_cell_magics
    from gadgetbook.views.result import display_frame

    ipython.register_magics(GadgetMagics)
    load_cell_magics(ipython)
    # By name: pandas is imported when a result first needs it, not when the extension loads.
    ipython.display_formatter.ipython_display_formatter.for_type_by_name("pandas.core.frame", "DataFrame",
                                                                         display_frame)
