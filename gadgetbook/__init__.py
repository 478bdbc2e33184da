"""gadgetbook: eBPF investigations that land in pandas DataFrames, from Python, a terminal or a notebook."""

from __future__ import annotations

from typing import Any

from gadgetbook.errors import GadgetError

__all__ = ["GadgetError", "advise_capabilities", "advise_network_policy", "advise_seccomp_profile", "bcc", "bpf",
           "check_network_policy", "check_seccomp_profile", "describe", "diff", "gadgets", "investigate",
           "load_ipython_extension", "recorder", "replay", "run", "start"]


def run(gadget: str, **kwargs: Any):
    """Run a gadget until its timeout (or Ctrl-C); returns a pandas DataFrame. See `gadgetbook.api.run`."""
    from gadgetbook.api import run as _run

    return _run(gadget, **kwargs)


def start(gadget: str, **kwargs: Any):
    """Start a gadget and return the live Run. See `gadgetbook.api.start`."""
    from gadgetbook.api import start as _start

    return _start(gadget, **kwargs)


def recorder(gadget: str = "traceloop"):
    """A recorder gadget's verbs: `gadgetbook.recorder("traceloop").start(selector="app=api")`, then `.show(...)`,
    `.stop(...)`, `.list()` from this or any later process. See `gadgetbook.recorders.front`."""
    from gadgetbook.recorders.front import RecorderVerbs

    return RecorderVerbs(gadget)


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


def investigate(gadgets, **kwargs: Any):
    """Run several gadgets together on the same targets ("execsnoop,opensnoop,tcptracer,dns", selector=...,
    timeout=...) and return one Investigation. See `gadgetbook.investigation.investigate`."""
    from gadgetbook.investigation import investigate as _investigate

    return _investigate(gadgets, **kwargs)


def diff(before, after):
    """What is new or gone per workload between two recordings or investigations. See `gadgetbook.compare.diff`."""
    from gadgetbook.compare.diff import diff as _diff

    return _diff(before, after)


def check_network_policy(policies, events, **kwargs: Any):
    """The connections of a recording (tcptracer, or an Investigation) that NetworkPolicies would have refused.
    See `gadgetbook.policy.network.check_network_policy`."""
    from gadgetbook.policy.network import check_network_policy as _check

    return _check(policies, events, **kwargs)


def check_seccomp_profile(profile, events):
    """Per workload and syscall, the calls of a traceloop recording (a DataFrame, or the path of a saved one) that
    a seccomp profile (JSON text, a dict, or a file) would have refused. See `gadgetbook.policy.seccomp`."""
    from gadgetbook.policy.seccomp import check_seccomp

    return check_seccomp(profile, events)


def advise_network_policy(events=None, **kwargs: Any):
    """NetworkPolicies allowing exactly the TCP connections seen: from a tcptracer DataFrame, or by watching
    workloads (selector=..., container=..., timeout=...). See `gadgetbook.advise.network_policy`."""
    from gadgetbook.advise.network_policy import advise_network_policy as _advise

    return _advise(events, **kwargs)


def advise_capabilities(events=None, **kwargs: Any):
    """Per workload, a securityContext that drops ALL capabilities and adds back those it used: from a
    capabilities DataFrame, or by watching workloads (selector=..., container=..., timeout=...). See
    `gadgetbook.advise.capabilities`."""
    from gadgetbook.advise.capabilities import advise_capabilities as _advise

    return _advise(events, **kwargs)


def advise_seccomp_profile(events=None, **kwargs: Any):
    """Seccomp profiles (podman/containerd/CRI-O/kubelet JSON) allowing exactly the syscalls each container made:
    from a traceloop DataFrame, or by recording workloads (selector=..., container=..., timeout=...). See
    `gadgetbook.advise.seccomp_profile`."""
    from gadgetbook.advise.seccomp_profile import advise_seccomp_profile as _advise

    return _advise(events, **kwargs)


def gadgets() -> list[str]:
    """Names of the gadgets this installation carries."""
    from gadgetbook import catalog

    return catalog.names()


def describe(gadget: str) -> str:
    """Parameters, columns and hooks of a gadget."""
    from gadgetbook.cli import describe as _describe

    return _describe(gadget)


def replay(path: str, show: bool = True, **filters: Any):
    """Load a recording made with --save: the same DataFrame (a Profile for profile runs; an Investigation for
    a saved investigation), no root or eBPF needed.

    Filters read only what they keep: `columns` (names), `start` and `end` (a time span, [start, end)),
    `pods`, `containers`, `nodes` (names). On a dataset folder (--save FOLDER) the files of other nodes and
    hours are not opened, row groups outside the span are skipped, other columns are not read.
    In a notebook it also shows the run's summary line, as the live run did when it ended.
    """
    from pathlib import Path

    from gadgetbook.investigation.store import is_investigation, read_part
    from gadgetbook.investigation.store import load as load_investigation

    if is_investigation(path):
        return load_investigation(path, **filters)
    from gadgetbook.errors import GadgetError

    if not Path(path).exists():
        raise GadgetError(f"No recording at {path}; record one with --save {Path(path).name}.")
    from gadgetbook.views.result import register

    result = register(read_part(Path(path), **filters))
    if show:
        from gadgetbook.views.result import show_summary

        show_summary(result)
    return result


def load_ipython_extension(ipython) -> None:
    """`%load_ext gadgetbook`: registers the %gadget magics."""
    from gadgetbook.magics import load_ipython_extension as _load

    _load(ipython)
