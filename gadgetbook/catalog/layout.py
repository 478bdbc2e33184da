"""The event struct, read from a gadget object's BTF, as a numpy dtype and a list of columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gadgetbook.errors import GadgetError
from gadgetbook.kernel.btf import Btf, BtfError

if TYPE_CHECKING:
    from gadgetbook.catalog.spec import Column, GadgetSpec

EVENT_VAR = "gadget_event_type"  # set by GADGET_EVENT() in bpf/include/gadget.h


def event_layout(spec: GadgetSpec) -> tuple[np.dtype, tuple[Column, ...], tuple[str, ...]]:
    if not spec.object_path.exists():
        raise GadgetError(f"The object for {spec.name} is missing ({spec.object_path}); rebuild gadgetbook.")
    btf = Btf.from_file(str(spec.object_path))
    try:
        return struct_layout(btf, btf.pointee(btf.var_type(EVENT_VAR)), spec.column_meta, spec.name)
    except BtfError as exc:
        raise GadgetError(f"{spec.name}'s object does not describe its event ({exc}).") from None
    finally:
        btf.close()


def struct_layout(btf: Btf, type_id: int, column_meta: dict | None = None, what: str = "the program"
                  ) -> tuple[np.dtype, tuple[Column, ...], tuple[str, ...]]:
    """One struct as (numpy dtype of a record, its own columns, the common fields present): fields of a
    nested `struct gadget_process` are the common ones; `_`-prefixed fields are left out."""
    from gadgetbook.catalog.spec import COMMON_STRUCT, Column

    column_meta = column_meta or {}
    flat = btf.flat_members(type_id)
    dtype, members = struct_dtype(btf, type_id)
    common = tuple(name for name, _, _, parent in flat if parent == COMMON_STRUCT)
    # A column declared with `from = FIELD` in gadget.toml is a second reading of that field (a
    # capability's name beside its number); it follows the field's own column.
    derived: dict[str, list[str]] = {}
    for name, meta in column_meta.items():
        if "from" in meta:
            derived.setdefault(meta["from"], []).append(name)
    names = {m.name for m in members}
    if set(derived) - names:
        raise GadgetError(f"{what}'s metadata derives columns from fields its event lacks: "
                          f"{', '.join(sorted(set(derived) - names))}; rebuild gadgetbook.")
    columns = []
    for m, (_, _, _, parent) in zip(members, flat):
        if parent == COMMON_STRUCT or m.name.startswith("_"):
            continue
        for key in (m.name, *derived.get(m.name, ())):
            meta = dict(column_meta.get(key, {}))
            meta.pop("from", None)
            default_name = key[: -len("_raw")] if key.endswith("_raw") else key
            columns.append(Column(
                field=m.name,
                name=meta.pop("name", default_name),
                dtype=m.dtype,
                shape=m.shape,
                format=meta.pop("format", None),
                doc=meta.pop("doc", ""),
                hidden=bool(meta.pop("hidden", False)),
                options=meta,
            ))
    return dtype, tuple(columns), common


TOP_KEY_VAR, TOP_VALUE_VAR = "gadget_top_key_type", "gadget_top_value_type"  # set by GADGET_TOP()
# Fields of a top gadget's key or value that become common columns rather than the gadget's own.
TOP_COMMON_FIELDS = ("pid", "comm", "uid", "mntns_id")


@dataclass(frozen=True)
class TopLayout:
    """A top gadget's map key and value as numpy dtypes, and the columns they make."""

    key: np.dtype
    value: np.dtype
    columns: tuple[Column, ...]
    common: tuple[str, ...]


def struct_dtype(btf: Btf, type_id: int) -> tuple[np.dtype, list]:
    """A struct (nested structs flattened) as a numpy dtype with its members; a BtfError for a field
    name that two nested structs share."""
    members = btf.struct_members(type_id)
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise BtfError(f"the field names {', '.join(twice)} appear twice once nested structs are flattened")
    dtype = np.dtype({
        "names": [m.name for m in members],
        "formats": [(m.dtype, m.shape) if m.shape else m.dtype for m in members],
        "offsets": [m.offset for m in members],
        "itemsize": btf.size_of(type_id),
    })
    return dtype, members


def named_struct(spec: GadgetSpec, var: str) -> np.dtype:
    """The dtype of a struct the gadget's object names by a typed NULL pointer variable (like GADGET_EVENT)."""
    btf = Btf.from_file(str(spec.object_path))
    try:
        return struct_dtype(btf, btf.pointee(btf.var_type(var)))[0]
    except BtfError as exc:
        raise GadgetError(f"{spec.name}'s object does not describe {var} ({exc}).") from None
    finally:
        btf.close()


def top_layout(spec: GadgetSpec) -> TopLayout:
    """Key and value structs named by GADGET_TOP() in the gadget's object."""
    from gadgetbook.catalog.spec import Column

    if not spec.object_path.exists():
        raise GadgetError(f"The object for {spec.name} is missing ({spec.object_path}); rebuild gadgetbook.")
    btf = Btf.from_file(str(spec.object_path))
    try:
        key, key_members = struct_dtype(btf, btf.pointee(btf.var_type(TOP_KEY_VAR)))
        value, value_members = struct_dtype(btf, btf.pointee(btf.var_type(TOP_VALUE_VAR)))
    except BtfError as exc:
        raise GadgetError(f"{spec.name}'s object does not describe its map key and value ({exc}).") from None
    finally:
        btf.close()
    members = key_members + value_members
    names = [m.name for m in members if not m.name.startswith("_")]
    if len(set(names)) != len(names):
        raise GadgetError(f"{spec.name}'s key and value structs share a field name; rename one.")
    common = tuple(m.name for m in members if m.name in TOP_COMMON_FIELDS)
    columns = []
    for m in members:
        if m.name in TOP_COMMON_FIELDS or m.name.startswith("_"):
            continue
        meta = dict(spec.column_meta.get(m.name, {}))
        default_name = m.name[: -len("_raw")] if m.name.endswith("_raw") else m.name
        columns.append(Column(field=m.name, name=meta.pop("name", default_name), dtype=m.dtype, shape=m.shape,
                              format=meta.pop("format", None), doc=meta.pop("doc", ""),
                              hidden=bool(meta.pop("hidden", False)), options=meta))
    # The spec's column order (gadget.toml) wins over struct order, which follows alignment.
    order = {name: i for i, name in enumerate(spec.column_meta)}
    columns.sort(key=lambda c: order.get(c.field, len(order)))
    return TopLayout(key, value, tuple(columns), common)
