"""The %gadget line magic: the CLI's flags in a notebook, live widgets while a gadget runs, DataFrames after.

`%load_ext gadgetbook` registers it (`load_ipython_extension` below); the magic parses and calls the library.
"""

from __future__ import annotations

import ast
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from traitlets import Float, Int

import gadgetbook
from gadgetbook.errors import GadgetError


@magics_class
class GadgetMagics(Magics):
    """%gadget: run eBPF gadgets from a notebook."""

    timeout = Float(None, allow_none=True, config=True,
                    help="Default --timeout in seconds for runs that give none; None runs until stopped.")
    max_live_rows = Int(20, config=True, help="Newest rows the live table shows while a gadget runs.")
    refresh = Float(0.25, config=True, help="Seconds between live table updates.")
    preview_rows = Int(10, config=True, help="Rows of the final preview when the result is assigned.")

    @line_magic
    def gadget(self, line: str):
        """Run an eBPF gadget and return its events as a pandas DataFrame.

        Usage::

            %gadget list                          the gadgets this installation carries
            %gadget describe GADGET               parameters, columns and hooks
            %gadget GADGET [flags]                run it (the same flags as `gadgetbook GADGET`)
            %gadget replay PATH.parquet           a recording, without a kernel or root
            %gadget deploy | undeploy | status    gadgetbook's node pods in a Kubernetes cluster
            %gadget advise network-policy -l SELECTOR [--timeout 30s] [--file PATH.yaml]
                                                  NetworkPolicies allowing exactly the connections seen

        Examples::

            %gadget execsnoop --timeout 10
            %gadget tcptracer -n shop -l app=api --timeout 30   (pods, on their nodes)
            df = %gadget opensnoop --failed -l app=api --timeout 30s
            %gadget opensnoop --timeout 10 --save runs/open.parquet

        While it runs, a live table shows the newest rows with counters and a
        Stop button; the notebook's interrupt button also ends the run, keeping
        what arrived. A bare call displays the DataFrame (and leaves it in `_`).

        Defaults, with %config::

            %config GadgetMagics.timeout = 10        default --timeout (seconds)
            %config GadgetMagics.max_live_rows = 20  newest rows in the live table
            %config GadgetMagics.refresh = 0.25      seconds between live updates
            %config GadgetMagics.preview_rows = 10   rows shown when the result is assigned
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
        from IPython.display import HTML, display

        if not argv or argv[0] in ("help", "-h", "--help"):
            print(self.gadget.__doc__)
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
            from gadgetbook.views.live import final_html

            result = gadgetbook.replay(argv[1], show=False)
            kind = recorded_kind(result.attrs)
            if kind.live_view() is None:  # a result that shows itself (a Profile)
                kind.show(result)
            else:
                display(HTML(final_html(result, show_table=not self._result_displayed())))
            return result
        if argv[0] == "advise":
            return self._advise(argv[1:])
        return self._run(argv)

    def _advise(self, argv: list[str]):
        """Watch with the live table, then show the policies (YAML with a download link) and return them."""
        from IPython.display import display

        from gadgetbook.advise.request import advise, parse_advise

        try:
            req = parse_advise(argv, prog="%gadget advise")
        except SystemExit:  # --help printed its text
            return None
        views = []

        def on_run(run):
            if getattr(self.shell, "kernel", None) is not None:
                from gadgetbook.views.live import watch

                views.append(watch(run, max_rows=self.max_live_rows, refresh=self.refresh))
            else:
                run.wait()

        advice = advise(req, on_run=on_run)
        for view in views:
            view.finish(advice.events, show_table=False)
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
        df = run.conclude()
        show_table = not self._result_displayed()
        if view is not None:
            view.finish(df, show_table)
        else:
            print(run.summary())
        return df

    def _run_for_result(self, run):
        """Kinds without a live view (profile): wait, then let the kind show the result."""
        print(f"{run.gadget}: running on {run.targets}"
              + (f" for {run.timeout:g} s" if run.timeout else " until interrupted") + "...")
        run.wait()
        result = run.conclude()
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
    """`%load_ext gadgetbook`: register the %gadget magics, and the cell magics %%bpf, %%bcc and %%node."""
    from gadgetbook.cell_magics import load_cell_magics

    ipython.register_magics(GadgetMagics)
    load_cell_magics(ipython)
