"""Unwind tables from a binary's DWARF call-frame information (.eh_frame, or .debug_frame in a debug file).

A table is one row per address range: where the caller's frame starts (the CFA, from rsp or rbp plus an
offset), where rbp was saved, or that the return address is undefined (the outermost frame). The BPF
side of the profile walks user stacks with these rows (bpf/profile/program.bpf.c, struct unwind_row).
pyelftools decodes the CFI; tables are cached in memory per file and on disk per build-id, because
decoding a large binary takes a second or two.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

# struct unwind_row in bpf/profile/program.bpf.c
ROW = np.dtype([("pc", "<u4"), ("cfa_off", "<u2"), ("rbp_off", "i1"), ("kind", "u1")])
RSP, RBP, PLT, END, UNSUPPORTED, NONE = 0, 1, 2, 3, 4, 5
_REG_RBP, _REG_RSP, _REG_RA = 6, 7, 16
_GNU_ARGS_SIZE = 0x2E
# CFA = rsp + 8 + ((rip & 15) >= N) * 8: the rule every lazy-binding PLT stub has (N is 10 or 11).
_PLT_HEAD = bytes([0x77, 0x08, 0x80, 0x00, 0x3F, 0x1A])
_PLT_TAIL = bytes([0x2A, 0x33, 0x24, 0x22])
CACHE_VERSION = 1


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gadgetbook" / "unwind"


def _decoded(entry):
    """pyelftools' decoded rows of one FDE, or None; it refuses DW_CFA_GNU_args_size (which changes
    nothing for unwinding), so that instruction is dropped and the FDE decoded again."""
    try:
        return entry.get_decoded()
    except Exception:
        if not any(i.opcode == _GNU_ARGS_SIZE for i in entry.instructions):
            return None
    try:
        entry.instructions = [i for i in entry.instructions if i.opcode != _GNU_ARGS_SIZE]
        entry.__dict__.pop("_decode_CFI_table", None)
        return entry.get_decoded()
    except Exception:
        return None


def _row(line: dict) -> tuple[int, int, int]:
    """(kind, cfa_off, rbp_off in 8-byte words) of one decoded CFI row."""
    ra = line.get(_REG_RA)
    if ra is not None and ra.type == "UNDEFINED":
        return END, 0, 0
    cfa = line["cfa"]
    if cfa.expr is not None:
        expr = bytes(cfa.expr)
        if (len(expr) == 11 and expr.startswith(_PLT_HEAD) and expr.endswith(_PLT_TAIL)
                and 0x30 <= expr[6] <= 0x4F):
            return PLT, expr[6] - 0x30, 0  # DW_OP_litN
        return UNSUPPORTED, 0, 0
    if cfa.reg not in (_REG_RSP, _REG_RBP) or not 0 <= (cfa.offset or 0) < 1 << 16:
        return UNSUPPORTED, 0, 0
    kind = RSP if cfa.reg == _REG_RSP else RBP
    rbp = line.get(_REG_RBP)
    rbp_off = 0
    if rbp is not None and rbp.type == "OFFSET" and rbp.arg % 8 == 0 and -128 <= rbp.arg // 8 < 128:
        rbp_off = rbp.arg // 8
    return kind, cfa.offset, rbp_off


def table_from_elf(path: str) -> np.ndarray:
    """The unwind rows of the ELF file at `path`, sorted by pc (empty when it has no CFI); OSError when
    the file cannot be opened."""
    from elftools.common.exceptions import ELFError
    from elftools.dwarf.callframe import FDE
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        try:
            elf = ELFFile(f)
            if elf.elfclass != 64 or elf["e_machine"] != "EM_X86_64":
                return np.zeros(0, ROW)
            dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False, follow_links=False)
            if dwarf.has_EH_CFI():
                entries = dwarf.EH_CFI_entries()
            elif dwarf.has_CFI():
                entries = dwarf.CFI_entries()
            else:
                return np.zeros(0, ROW)
            return _rows(entries, FDE)
        except (ELFError, ValueError, KeyError, AssertionError, TypeError, IndexError):
            return np.zeros(0, ROW)


def _rows(entries, fde_type) -> np.ndarray:
    pcs: list[int] = []
    kinds: list[int] = []
    cfas: list[int] = []
    rbps: list[int] = []
    ends: list[int] = []
    for entry in entries:
        if not isinstance(entry, fde_type):
            continue
        start = entry.header["initial_location"]
        end = start + entry.header["address_range"]
        decoded = _decoded(entry)
        lines = decoded.table if decoded is not None else []
        if not lines:
            pcs.append(start)
            kinds.append(UNSUPPORTED)
            cfas.append(0)
            rbps.append(0)
        for line in lines:
            kind, cfa, rbp = _row(line)
            pcs.append(line["pc"])
            kinds.append(kind)
            cfas.append(cfa)
            rbps.append(rbp)
        ends.append(end)
    if not pcs:
        return np.zeros(0, ROW)
    rows = np.zeros(len(pcs) + len(ends), ROW)
    n = len(pcs)
    rows["pc"][:n] = np.asarray(pcs, dtype=np.uint64) & 0xFFFFFFFF
    rows["kind"][:n] = kinds
    rows["cfa_off"][:n] = cfas
    rows["rbp_off"][:n] = rbps
    # Past the end of each function: no information, unless the next function starts right there.
    rows["pc"][n:] = np.asarray(ends, dtype=np.uint64) & 0xFFFFFFFF
    rows["kind"][n:] = NONE
    # Sort by pc; where a function starts exactly where another ends, its own row wins.
    order = np.lexsort((rows["kind"] != NONE, rows["pc"]))
    rows = rows[order]
    last = np.ones(len(rows), dtype=bool)
    last[:-1] = rows["pc"][1:] != rows["pc"][:-1]
    rows = rows[last]
    # Rows that repeat the previous one add nothing.
    same = np.zeros(len(rows), dtype=bool)
    same[1:] = ((rows["kind"][1:] == rows["kind"][:-1]) & (rows["cfa_off"][1:] == rows["cfa_off"][:-1])
                & (rows["rbp_off"][1:] == rows["rbp_off"][:-1]))
    return rows[~same]


class UnwindTables:
    """Tables per file identity (in memory) and per build-id (on disk, across runs)."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._tables: dict[object, np.ndarray] = {}
        self.cache_dir = cache_dir if cache_dir is not None else _cache_dir()
        self.built = 0  # tables decoded in this process (not found in a cache)

    def get(self, key: object, paths: list[str], build_id: str | None) -> np.ndarray:
        """The table of a file, from memory, the disk cache, or decoded from the first path that opens."""
        table = self._tables.get(key)
        if table is None:
            table = self._load(build_id)
            if table is None:
                for path in paths:
                    try:
                        table = table_from_elf(path)
                        break
                    except OSError:
                        continue  # a mapping that changed since the snapshot: try the next way in
                else:
                    return np.zeros(0, ROW)  # not kept: the next process that maps it tries again
                self.built += 1
                if len(table):
                    self._store(build_id, table)
            self._tables[key] = table
        return table

    def _file(self, build_id: str) -> Path:
        return self.cache_dir / f"{build_id}.v{CACHE_VERSION}.npy"

    def _load(self, build_id: str | None) -> np.ndarray | None:
        if not build_id:
            return None
        try:
            table = np.load(self._file(build_id), allow_pickle=False)
        except (OSError, ValueError):
            return None
        return table if table.dtype == ROW else None

    def _store(self, build_id: str | None, table: np.ndarray) -> None:
        if not build_id:
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, table, allow_pickle=False)
            os.replace(tmp, self._file(build_id))
        except OSError:
            pass  # noqa: S110 - a cache that cannot be written only costs the next run time
