"""A gadget's spec, declared once: metadata from gadget.toml plus the event layout from the object's BTF."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gadgetbook.errors import GadgetError
from gadgetbook.kernel.loader import HookGroup

COMMON_STRUCT = "gadget_process"
PARAM_TYPES = {"bool": bool, "int": int, "uint": int, "str": str, "float": float}


def _capability_mask(value: str) -> int:
    from gadgetbook.kernel.capability_names import capability_mask

    return capability_mask(value)


# How a param given as words becomes the number its .rodata setting holds (`convert` in gadget.toml);
# each raises a GadgetError in one sentence for a word it does not know.
PARAM_CONVERTERS = {"capability_mask": _capability_mask}


@dataclass(frozen=True)
class Param:
    """A gadget parameter: a CLI flag, a keyword of `gadgetbook.run`, maybe a .rodata setting."""

    name: str
    type: str
    default: Any
    help: str = ""
    rodata: str | None = None
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    convert: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> Any:
        """The value converted to the param's type, or a GadgetError in one sentence."""
        want = PARAM_TYPES[self.type]
        try:
            if want is bool and isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                value = value.lower() in ("true", "1", "yes")
            else:
                value = want(value)
        except (TypeError, ValueError):
            raise GadgetError(f"{self.flag} takes a {self.type}, not {value!r}.") from None
        if self.type == "uint" and value < 0:
            raise GadgetError(f"{self.flag} must not be negative (got {value}).")
        if self.minimum is not None and value < self.minimum or self.maximum is not None and value > self.maximum:
            raise GadgetError(f"{self.flag} must be between {self.minimum} and {self.maximum} (got {value}).")
        if self.choices and value not in self.choices:
            raise GadgetError(f"{self.flag} must be one of {', '.join(map(str, self.choices))} (got {value!r}).")
        if self.convert:
            try:
                self.rodata_value(value)
            except GadgetError as exc:
                raise GadgetError(f"{self.flag}: {exc}") from None
        return value

    def rodata_value(self, value: Any) -> int | bool:
        """What the param's .rodata setting holds for a checked value."""
        return PARAM_CONVERTERS[self.convert](value) if self.convert else value


@dataclass(frozen=True)
class Column:
    """How one event field becomes a DataFrame column."""

    field: str
    name: str
    dtype: str
    shape: tuple[int, ...] = ()
    format: str | None = None
    doc: str = ""
    hidden: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)  # one spec object per gadget: compared and hashed by identity
class GadgetSpec:
    name: str
    description: str
    kind: str  # as gadget.toml declares it; gadgetbook.kinds.kind_of turns it into a Kind
    object_path: Path
    params: dict[str, Param]
    hooks: tuple[HookGroup, ...]
    column_meta: dict[str, dict[str, Any]]
    examples: tuple[str, ...] = ()
    # What identifies a workload's behaviour in the rows (for diffs): [{what, columns, where}], see gadgetbook.compare
    behaviour: tuple[dict[str, Any], ...] = ()
    empty_hint: str = ""  # why a run may see nothing, said when one does (gadget.toml `empty_hint`)

    @functools.cached_property
    def layout(self) -> tuple[Any, tuple[Column, ...], tuple[str, ...]]:
        """(numpy dtype of one event, the gadget's own columns, the common fields present)."""
        from gadgetbook.catalog.layout import event_layout

        return event_layout(self)

    @property
    def event_dtype(self) -> Any:
        return self.layout[0]

    @property
    def event_columns(self) -> tuple[Column, ...]:
        """The gadget's own columns made from its event struct (trace gadgets)."""
        return self.layout[1]

    @functools.cached_property
    def top_layout(self) -> Any:
        """A "top" gadget's map key and value dtypes and the columns they make."""
        from gadgetbook.catalog.layout import top_layout

        return top_layout(self)

    def checked_params(self, given: dict[str, Any]) -> dict[str, Any]:
        """Every param, given or default, converted and checked; one sentence for an unknown name."""
        unknown = set(given) - set(self.params)
        if unknown:
            known = ", ".join(sorted(self.params)) or "none"
            raise GadgetError(f"{self.name} has no parameter {', '.join(sorted(unknown))}; its parameters: {known}.")
        return {name: prm.check(given.get(name, prm.default)) for name, prm in self.params.items()}

    def rodata(self, values: dict[str, Any]) -> dict[str, int | bool]:
        return {p.rodata: p.rodata_value(values[p.name]) for p in self.params.values() if p.rodata}


def load_spec(toml_path: Path) -> GadgetSpec:
    """Read one gadget's metadata file (installed beside its object)."""
    with open(toml_path, "rb") as f:
        meta = tomllib.load(f)
    try:
        params = {
            name: Param(
                name=name,
                type=p.get("type", "str"),
                default=p.get("default"),
                help=p.get("help", ""),
                rodata=p.get("rodata"),
                choices=tuple(p["choices"]) if "choices" in p else None,
                minimum=p.get("min"),
                maximum=p.get("max"),
                convert=p.get("convert"),
            )
            for name, p in meta.get("params", {}).items()
        }
        for name, p in params.items():
            if p.convert and p.convert not in PARAM_CONVERTERS:
                raise KeyError(f"params.{name}.convert")
        hooks = tuple(
            HookGroup(tuple(h["programs"]), bool(h.get("optional", False))) for h in meta.get("hooks", [])
        )
        return GadgetSpec(
            name=meta["name"],
            description=meta.get("description", ""),
            kind=meta.get("kind", "trace"),
            object_path=toml_path.with_suffix(".bpf.o"),
            params=params,
            hooks=hooks,
            column_meta=meta.get("columns", {}),
            examples=tuple(meta.get("examples", ())),
            behaviour=tuple(dict(b) for b in meta.get("behaviour", ())),
            empty_hint=meta.get("empty_hint", ""),
        )
    except (KeyError, TypeError) as exc:
        raise GadgetError(f"The metadata of {toml_path.stem} is malformed ({exc}); reinstall gadgetbook.") from None
