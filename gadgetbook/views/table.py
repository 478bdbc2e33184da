"""Rows as text for people, one way for the live table, the final view and the terminal: which columns, in what
order (the gadget's own first, the common ones after, empty ones left out), and each value as a short cell."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gadgetbook.frames.coded import Coded
from gadgetbook.frames.decode import COMMON_COLUMNS

# Columns every run has; the rest are the gadget's own (and what a cluster adds about peers).
COMMON = frozenset(COMMON_COLUMNS) | {"mntns_id"}
# Kept in the DataFrame and in -o json, never shown: ids that only matter to a program.
NEVER_SHOWN = frozenset({"tid", "gid", "mntns_id"})
CELL_CHARS = 60  # longer text is cut with an ellipsis; the full value is the cell's title (hover)
ROW_PX = 22  # one line per row: the live table's height is rows x this, whatever the values


@dataclass(frozen=True)
class Cell:
    text: str
    title: str | None = None  # the full value, when the text is cut or shortened
    numeric: bool = False


@dataclass
class Layout:
    """The columns a view shows, in order, and the unit of those that have one (bytes, count)."""

    order: list[str]
    units: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, columns: Sequence[str], units: dict[str, str] | None = None) -> Layout:
        own = [c for c in columns if c not in COMMON]
        common = [c for c in columns if c in COMMON and c not in NEVER_SHOWN]
        return cls(own + common, dict(units or {}))

    @classmethod
    def for_kind(cls, kind, columns: Sequence[str]) -> Layout:
        return cls.of(columns, kind.column_units() if kind is not None else {})

    def shown(self, filled: Iterable[str]) -> list[str]:
        """The columns to show, given those that hold a value somewhere; node only where pods are named."""
        filled = set(filled)
        return [c for c in self.order if c in filled and (c != "node" or "pod" in filled)]

    def cells(self, data, columns: Sequence[str]) -> list[list[Cell]]:
        """Rows of cells for these columns of a batch or a DataFrame."""
        cols = [[cell(c, v, self.units.get(c)) for v in values(data, c)] for c in columns]
        return [list(row) for row in zip(*cols)]


def values(data, column: str) -> list:
    """One column of a batch (numpy arrays and Coded) or a DataFrame as plain Python values."""
    v = data[column]
    if isinstance(v, Coded):
        return v.values().tolist()
    if hasattr(v, "to_numpy"):  # a pandas Series
        v = v.to_numpy()
    if v.dtype.kind == "M":
        return list(v)  # numpy datetime64: formatted by cell()
    return v.tolist()


def filled(data, columns: Iterable[str]) -> set[str]:
    """The columns that hold a value in some row (empty: "", None, NaN, False)."""
    out = set()
    for c in columns:
        v = data[c]
        if isinstance(v, Coded):
            # The few distinct values first: most columns are all blank or all filled, and need no pass over rows.
            blank = np.array([_blank(x) for x in v.categories.tolist()], dtype=bool)
            if len(v.codes) and not blank.all() and (not blank.any() or (~blank[v.codes]).any()):
                out.add(c)
            continue
        if hasattr(v, "to_numpy"):
            v = v.to_numpy()
        if v.dtype == bool:
            if v.any():
                out.add(c)
        elif v.dtype.kind in "iuMm":
            if len(v):
                out.add(c)
        elif v.dtype.kind == "f":
            if len(v) and not np.isnan(v).all():
                out.add(c)
        elif any(not _blank(x) for x in set(v.tolist()) if _hashable(x)) or any(
                not _hashable(x) for x in v.tolist()):
            out.add(c)
    return out


def _hashable(x) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def _blank(x) -> bool:
    return x is None or x is False or x == "" or (isinstance(x, float) and math.isnan(x))


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n:,} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}"
    return str(n)  # not reached


def cell(column: str, value: Any, unit: str | None = None, width: int = CELL_CHARS) -> Cell:
    """One value as a short, one-line cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Cell("")
    if isinstance(value, np.datetime64) or hasattr(value, "isoformat") and hasattr(value, "hour"):
        stamp = str(np.datetime64(value, "ns"))
        return Cell(stamp[11:23], stamp.replace("T", " "))
    if isinstance(value, (bool, np.bool_)):
        return Cell("yes" if value else "")
    if isinstance(value, (int, np.integer)):
        if unit == "bytes":
            return Cell(human_bytes(int(value)), f"{int(value):,} bytes", numeric=True)
        if unit == "count":
            return Cell(f"{int(value):,}", numeric=True)
        return Cell(str(value), numeric=True)
    if isinstance(value, (float, np.floating)):
        return Cell(f"{value:,.6g}", numeric=True)
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    text = " ".join(text.split("\n"))
    if len(text) > width:
        return Cell(text[: width - 1] + "…", text)
    return Cell(text)


# Scoped under the view's own box (T): more specific than JupyterLab's rules for output tables, which right-align
# every cell; so text reads left-aligned, numbers right-aligned, and headers as their cells.
_T = ":is(.gadgetbook-final, .gadgetbook-live) table.gadgetbook-table"
STYLE = f"""<style>
{_T} {{ border-collapse: collapse; font-size: 12px; table-layout: auto; margin: 0; }}
{_T} th, {_T} td {{
  text-align: left; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 32em;
  padding: 0 10px 0 2px; height: 22px; line-height: 22px; vertical-align: middle; border: none; }}
{_T} th {{ font-weight: 600; border-bottom: 1px solid var(--jp-border-color1, #ccc); }}
{_T} .gadgetbook-num {{ text-align: right; font-variant-numeric: tabular-nums; }}
{_T} tbody tr:nth-child(odd) {{ background: var(--jp-layout-color2, #f7f7f7); }}
{_T} tr.gadgetbook-gap td {{ text-align: center; color: var(--jp-ui-font-color2, #777); }}
.gadgetbook-rows {{ overflow: hidden; }}
.gadgetbook-notes {{ margin: 2px 0 4px 0; padding-left: 1.4em; }}
</style>"""


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Cell]], *, marks: dict[str, str] | None = None,
               gap_after: int | None = None, gap_text: str = "") -> str:
    """An HTML table of cells: text left-aligned, numbers right-aligned, headers aligned as their cells, one
    line per row, long text cut with its full value on hover. `gap_after` puts a row saying what was left out."""
    marks = marks or {}
    numeric = {c for i, c in enumerate(columns) if rows and all(r[i].numeric or not r[i].text for r in rows)
               and any(r[i].numeric for r in rows)}
    head = "".join(f'<th{_num(c in numeric)}>{html.escape(c)}{marks.get(c, "")}</th>' for c in columns)
    body = []
    for i, row in enumerate(rows):
        tds = "".join(f"<td{_num(cl.numeric)}"
                      + (f' title="{html.escape(cl.title, quote=True)}"' if cl.title else "")
                      + f">{html.escape(cl.text)}</td>" for cl in row)
        body.append(f"<tr>{tds}</tr>")
        if gap_after is not None and i == gap_after - 1:
            body.append(f'<tr class="gadgetbook-gap"><td colspan="{len(columns)}">{html.escape(gap_text)}</td></tr>')
    return (f'<table class="gadgetbook-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _num(yes: bool) -> str:
    return ' class="gadgetbook-num"' if yes else ""
