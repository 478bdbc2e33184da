"""`gadgetbook.bpf(source, ...)`: a CO-RE program of one's own compiled, then run like any gadget (this host,
its containers, or pods on their nodes), returning its events and maps."""

from __future__ import annotations

from typing import Any

from gadgetbook.errors import GadgetError
from gadgetbook.programs.compile import compile_program, defined_structs, host_vmlinux
from gadgetbook.programs.spec import PROGRAM_PARAMS, ProgramSpec, program_spec
from gadgetbook.run_handle import Run

_SPEC_KEYS = {"name", "event"}


def prepare(source: str, kwargs: dict[str, Any]) -> tuple[ProgramSpec, dict[str, Any], dict, dict, Any]:
    """The program compiled for where it will run (this host, or each node's kernel), as a spec with its
    params checked; (spec, params, target options, cluster options, kube client or None)."""
    from gadgetbook import api
    from gadgetbook.kinds import kind_of

    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    name, event = kwargs.pop("name", None) or "cell", kwargs.pop("event", None)
    opts, kube_opts, params = api.split_options(kwargs)
    unknown = set(params) - set(PROGRAM_PARAMS)
    if unknown:
        raise GadgetError(f"A program takes no {', '.join(sorted(unknown))}; its settings: "
                          f"{', '.join(PROGRAM_PARAMS)}, and the target options of any gadget.")
    if not source.strip():
        raise GadgetError("The cell is empty: write a BPF C program in it (see %%bpf?).")
    structs = defined_structs(source)
    kube = None
    if api.cluster_mode(opts, kube_opts):
        from gadgetbook.kube.api import connect
        from gadgetbook.programs.cluster import NodeObjects

        kube = connect(kube_opts.get("kubeconfig"), kube_opts.get("context"))
        objects = NodeObjects(kube, source)
        first = objects.compiled_for(objects.first_node(kube_opts.get("node")))
        spec = program_spec(first.path, name=name, cell_structs=structs, event=event, warnings=first.warnings,
                            objects=objects)
    else:
        vmlinux, _ = host_vmlinux()
        compiled = compile_program(source, vmlinux)
        spec = program_spec(compiled.path, name=name, cell_structs=structs, event=event,
                            warnings=compiled.warnings)
    checked = spec.checked_params(params)
    kind_of(spec).check(checked)
    return spec, checked, opts, kube_opts, kube


def start(source: str, **kwargs: Any) -> Run:
    """Compile and start a CO-RE BPF C program; returns the live Run (`result()` gives a ProgramResult).

    Keywords: name (of the run, "cell"), event (the record struct, when the cell defines several), interval
    (read the maps every N seconds while it runs), max_events, hist ("map1,map2": log2 histograms), and the
    target options of any gadget: timeout, pid, container, selector, local, ring_size, namespace, podname,
    node, context, kubeconfig.
    """
    from gadgetbook import api

    spec, params, opts, kube_opts, kube = prepare(source, kwargs)
    return api.start_spec(spec, params, opts, kube_opts, kube=kube)


def run(source: str, **kwargs: Any):
    """Compile and run a program until its timeout (or Ctrl-C); returns a ProgramResult (.events, .maps)."""
    with start(source, **kwargs) as r:
        r.wait()
    return r.conclude()
