"""`gadgetbook.bpf(source, ...)`: a CO-RE program of one's own compiled, then run like any gadget (this host,
its containers, or pods on their nodes), returning its events and maps."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from gadgetbook.errors import GadgetError
from gadgetbook.programs.compile import compile_program, defined_structs, host_vmlinux
from gadgetbook.programs.spec import PROGRAM_PARAMS, ProgramSpec, program_spec
from gadgetbook.run_handle import Run

_SPEC_KEYS = {"name", "event"}


def prepare(source: str, kwargs: dict[str, Any]) -> tuple[ProgramSpec, dict[str, Any], Any, Any]:
    """The program compiled for where it will run (this host, or each node's kernel), as a spec with its
    params checked; (spec, params, where, kube client or None)."""
    from gadgetbook.api import Where
    from gadgetbook.kinds import kind_of

    params = {k: v for k, v in kwargs.items() if v is not None}
    name, event = params.pop("name", None) or "cell", params.pop("event", None)
    where = Where.split(params)
    unknown = set(params) - set(PROGRAM_PARAMS)
    if unknown:
        raise GadgetError(f"A program takes no {', '.join(sorted(unknown))}; its settings: "
                          f"{', '.join(PROGRAM_PARAMS)}, and the target options of any gadget.")
    if not source.strip():
        raise GadgetError("The cell is empty: write a BPF C program in it (see %%bpf?).")
    structs = defined_structs(source)
    kube = None
    if where.in_cluster():
        from gadgetbook.kube.api import connect
        from gadgetbook.programs.cluster import NodeObjects

        kube = connect(where.kube_opts.get("kubeconfig"), where.kube_opts.get("context"))
        objects = NodeObjects(kube, source)
        first = objects.compiled_for(objects.first_node(where.kube_opts.get("node")))
        spec = program_spec(first.path, name=name, cell_structs=structs, event=event, warnings=first.warnings,
                            objects=objects)
    else:
        vmlinux, _ = host_vmlinux()
        compiled = compile_program(source, vmlinux)
        spec = program_spec(compiled.path, name=name, cell_structs=structs, event=event,
                            warnings=compiled.warnings)
    checked = spec.checked_params(params)
    kind_of(spec).check(checked)
    return spec, checked, where, kube


def start(source: str, **kwargs: Any) -> Run:
    """Compile and start a CO-RE BPF C program; returns the live Run (`result()` gives a ProgramResult).

    Keywords: name (of the run, "cell"), event (the record struct, when the cell defines several), interval
    (read the maps every N seconds while it runs), max_events, hist ("map1,map2": log2 histograms), and the
    target options of any gadget: timeout, pid, container, selector, local, ring_size, namespace, podname,
    node, context, kubeconfig.
    """
    from gadgetbook.api import start_spec

    spec, params, where, kube = prepare(source, kwargs)
    return start_spec(spec, params, where, kube=kube)


def run(source: str, **kwargs: Any):
    """Compile and run a program until its timeout (or Ctrl-C); returns a ProgramResult (.events, .maps)."""
    with start(source, **kwargs) as r:
        r.wait()
    return r.conclude()


class KernelHeadersWarning(UserWarning):
    """bcc compiles against another kernel's headers: tracepoint arguments are right, struct reads may not be."""


def _warn(message: str) -> None:
    warnings.warn(message, KernelHeadersWarning, stacklevel=3)


def start_bcc(source: str, *, warn: Callable[[str], None] = _warn, **kwargs: Any) -> Run:
    """Start a bcc program (bcc's C, Python-free) on this host, or on the nodes of a cluster; returns the live Run.

    Keywords: name, events (the output to read when there are several), tables ("a,b": the tables to read;
    default all), hist, interval, max_events, and the target options of any gadget (timeout, pid, container,
    selector, local, ring_size: each CPU's perf buffer; namespace, podname, node, context, kubeconfig). Compiled
    by bcc against the kernel headers where it runs: none is one sentence and nothing runs; another kernel's is
    a warning, given to `warn` (tracepoint arguments are right, kernel struct reads may not be). In a cluster
    each node's pod compiles it (a pod of the image built with bcc: `gadgetbook deploy --bcc`) against that
    node's headers, and its warnings come from the node.
    """
    from gadgetbook.api import Where, start_spec
    from gadgetbook.kinds import kind_of
    from gadgetbook.kinds.bcc import bcc_spec
    from gadgetbook.programs.bcc_host import kernel_headers
    from gadgetbook.programs.spec import BCC_PARAMS

    params = {k: v for k, v in kwargs.items() if v is not None}
    name = params.pop("name", None) or "cell"
    where = Where.split(params)
    unknown = set(params) - set(BCC_PARAMS)
    if unknown:
        raise GadgetError(f"A bcc program takes no {', '.join(sorted(unknown))}; its settings: "
                          f"{', '.join(BCC_PARAMS)}, and the target options of any gadget.")
    if not source.strip():
        raise GadgetError("The cell is empty: write a bcc program in it (see %%bcc?).")
    if where.in_cluster():
        spec = bcc_spec(source, name)
        run = start_spec(spec, spec.checked_params(params), where)
        for note in kind_of(spec).node_warnings:
            warn(note)
        return run
    headers = kernel_headers()
    if headers.mismatch:
        warn(headers.mismatch)
    spec = bcc_spec(source, name, tuple(w for w in (headers.mismatch,) if w))
    where.opts["local"] = True
    return start_spec(spec, spec.checked_params(params), where)


def run_bcc(source: str, **kwargs: Any):
    """Run a bcc program until its timeout (or Ctrl-C); returns a ProgramResult (.events, .maps)."""
    with start_bcc(source, **kwargs) as r:
        r.wait()
    return r.conclude()
