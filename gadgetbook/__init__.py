"""gadgetbook: eBPF investigations that land in pandas DataFrames, from Python, a terminal or a notebook."""

from __future__ import annotations

from typing import Any

from gadgetbook.errors import GadgetError

__all__ = ["GadgetError", "advise_network_policy", "bcc", "bpf", "describe", "gadgets", "load_ipython_extension",
           "replay", "run", "start"]


def run(gadget: str, **kwargs: Any):
    """Run a gadget until its timeout (or Ctrl-C); returns a pandas DataFrame. See `gadgetbook.api.run`."""
    from gadgetbook.api import run as _run

    return _run(gadget, **kwargs)


def start(gadget: str, **kwargs: Any):
    """Start a gadget and return the live Run. See `gadgetbook.api.start`."""
    from gadgetbook.api import start as _start

    return _start(gadget, **kwargs)


def bpf(source: str, **kwargs: Any):
    """Compile a CO-RE BPF C program of one's own and run it like a gadget; returns a ProgramResult (its events
    and maps as DataFrames). See `gadgetbook.programs.api.start` for the keywords."""
    from gadgetbook.programs.api import run as _run

    return _run(source, **kwargs)


def bcc(source: str, **kwargs: Any):
    """Run a bcc program of one's own (bcc's C, no Python) on this host; returns a ProgramResult. Needs bcc
    and kernel headers; see `gadgetbook.programs.api.start_bcc` for the keywords."""
    from gadgetbook.programs.api import run_bcc

    return run_bcc(source, **kwargs)


def advise_network_policy(events=None, **kwargs: Any):
    """NetworkPolicies allowing exactly the TCP connections seen: from a tcptracer DataFrame, or by watching
    workloads (selector=..., container=..., timeout=...). See `gadgetbook.advise.network_policy`."""
    from gadgetbook.advise.network_policy import advise_network_policy as _advise

    return _advise(events, **kwargs)


def gadgets() -> list[str]:
    """Names of the gadgets this installation carries."""
    from gadgetbook import catalog

    return catalog.names()


def describe(gadget: str) -> str:
    """Parameters, columns and hooks of a gadget."""
    from gadgetbook.cli import describe as _describe

    return _describe(gadget)


def replay(path: str, show: bool = True):
    """Load a recording (Parquet) made with --save: the same DataFrame (a Profile for profile runs),
    no root or eBPF needed.

    In a notebook it also shows the run's summary line, as the live run did when it ended.
    """
    from gadgetbook.frames.recording import load
    from gadgetbook.kinds import recorded_kind

    df = load(path)
    result = recorded_kind(df.attrs).result(df)
    if show:
        from gadgetbook.views.live import show_summary

        show_summary(result)
    return result


def load_ipython_extension(ipython) -> None:
    """`%load_ext gadgetbook`: registers the %gadget magics."""
    from gadgetbook.magics import load_ipython_extension as _load

    _load(ipython)
