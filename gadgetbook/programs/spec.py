"""A program of one's own as a gadget spec, made from its compiled object: the ring buffer it writes and the
struct of its records, found in the object's BTF (the one struct the cell defines, or the one named)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gadgetbook.catalog.spec import COMMON_STRUCT, GadgetSpec, Param
from gadgetbook.errors import GadgetError
from gadgetbook.kernel.btf import STRUCT, Btf, BtfError
from gadgetbook.kernel.gadget import EVENTS_MAP
from gadgetbook.programs.maps import PERF_EVENT_ARRAY, RINGBUF

EVENT_VAR = "gadget_event_type"  # GADGET_EVENT() in gadget.h names the record outright

PROGRAM_PARAMS = {
    "interval": Param("interval", "float", 0.0, minimum=0.0,
                      help="read the maps every this many seconds while it runs (0: once, when it ends)"),
    "max_events": Param("max_events", "uint", 1_000_000,
                        help="keep at most this many events; the rest are read, dropped and counted as lost"),
    "hist": Param("hist", "str", "", help="maps to show as log2 histograms, comma-separated "
                  "(maps whose value holds `slots[]`, or whose name says hist/dist, are found without it)"),
}

BCC_PARAMS = {
    **PROGRAM_PARAMS,
    "events": Param("events", "str", "", help="the perf or ring buffer output whose records become rows "
                    "(needed only when the program has more than one)"),
    "tables": Param("tables", "str", "", help="tables to read when it ends, comma-separated (default: all of them)"),
}


@dataclass(frozen=True, eq=False)
class ProgramSpec(GadgetSpec):
    """A gadget spec for a program of one's own: `record` is the struct of its ring buffer's records (None
    when it has no ring buffer, or keeps only maps), `ring` the map they come from."""

    record: str | None = None
    ring: str | None = None
    maps: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    objects: Any = field(default=None, repr=False)  # per node of a cluster: see programs.cluster

    @functools.cached_property
    def layout(self) -> tuple[Any, tuple, tuple[str, ...]]:
        import numpy as np

        from gadgetbook.catalog.layout import struct_layout

        if self.record is None:
            return np.dtype([]), (), ()
        btf = Btf.from_file(str(self.object_path))
        try:
            return struct_layout(btf, btf.find(self.record, STRUCT))
        except BtfError as exc:
            raise GadgetError(f"The record struct {self.record} cannot become columns: {exc}.") from None
        finally:
            btf.close()

    def hist_names(self, params: dict[str, Any]) -> set[str]:
        return {n.strip() for n in str(params.get("hist") or "").split(",") if n.strip()}


def program_spec(object_path: Path, *, name: str = "cell", cell_structs: list[str] | None = None,
                 event: str | None = None, kind: str = "program", warnings: tuple[str, ...] = (),
                 objects: Any = None) -> ProgramSpec:
    """The spec of a compiled program. `cell_structs` are the structs the cell defines (the candidates for
    its record); `event` names the record when there is more than one."""
    btf = Btf.from_file(str(object_path))
    try:
        maps = btf.map_definitions()
        ring = ring_of(maps)
        record = record_of(btf, maps, ring, cell_structs or [], event)
    finally:
        btf.close()
    return ProgramSpec(name=name, description="a program of one's own", kind=kind, object_path=Path(object_path),
                       params=dict(PROGRAM_PARAMS), hooks=(), column_meta={}, record=record, ring=ring,
                       maps=tuple(sorted(maps)), warnings=warnings, objects=objects)


def ring_of(maps: dict[str, dict[str, int]]) -> str | None:
    """The ring buffer the records come from: the program's own, else gadget.h's (gadget_reserve/submit)."""
    perf = sorted(n for n, m in maps.items() if m.get("type") == PERF_EVENT_ARRAY)
    if perf:
        raise GadgetError(f"The program sends events through a perf event array ({', '.join(perf)}); "
                          "gadgetbook reads ring buffers: declare a BPF_MAP_TYPE_RINGBUF map and use "
                          "bpf_ringbuf_reserve/submit (or gadget.h's gadget_reserve/gadget_submit).")
    rings = sorted(n for n, m in maps.items() if m.get("type") == RINGBUF)
    own = [n for n in rings if n != EVENTS_MAP]
    if len(own) > 1:
        raise GadgetError(f"The program has several ring buffers ({', '.join(own)}); gadgetbook reads one: "
                          "keep one of them.")
    if own:
        return own[0]
    return EVENTS_MAP if EVENTS_MAP in rings else None


def record_of(btf: Btf, maps: dict[str, dict[str, int]], ring: str | None, cell_structs: list[str],
              event: str | None) -> str | None:
    """The struct of the ring buffer's records: GADGET_EVENT's, the one named, or the one struct the cell
    defines that is neither a map's key or value nor part of another."""
    structs = btf.named_structs()
    if event:
        if event not in structs:
            known = ", ".join(s for s in cell_structs if s in structs) or "none"
            raise GadgetError(f"--event {event}: the program defines no struct {event}; its structs: {known}.")
        return event
    try:
        return btf.struct_name(btf.pointee(btf.var_type(EVENT_VAR)))
    except BtfError:
        pass
    if ring is None:
        return None
    keyed = {btf.struct_name(t) for m in maps.values() for k, t in m.items() if k in ("key", "value")
             and btf.kind(btf.strip(t)) == STRUCT}
    candidates = [s for s in cell_structs if s in structs and s not in keyed and s != COMMON_STRUCT]
    nested = {btf.struct_name(t) for s in candidates for _, t, _ in btf.members(structs[s])
              if btf.kind(btf.strip(t)) == STRUCT}
    candidates = [s for s in candidates if s not in nested]
    if len(candidates) > 1:
        raise GadgetError(f"The cell defines the structs {', '.join(candidates)}; name the ring buffer's record "
                          "with --event NAME.")
    if candidates:
        return candidates[0]
    if ring != EVENTS_MAP:
        raise GadgetError(f"The program writes the ring buffer {ring} but defines no struct for its records; "
                          "define one (struct event {...}) and reserve sizeof(struct event).")
    return None  # gadget.h's ring buffer, unused: a program of maps only
