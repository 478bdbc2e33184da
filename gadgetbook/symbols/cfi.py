"""Unwind tables from a binary's DWARF call-frame information (.eh_frame, or .debug_frame in a debug file).

A table is one row per address range: where the caller's frame starts (the CFA, from rsp or rbp plus an
offset), where rbp was saved, or that the return address is undefined (the outermost frame). The BPF
side of the profile walks user stacks with these rows (bpf/profile/program.bpf.c, struct unwind_row).
.eh_frame is read directly (twenty-odd times faster than pyelftools, which takes seconds for a large
binary); what that reader does not know, and .debug_frame, pyelftools decodes. Tables are cached in
memory per file and on disk per build-id.
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
            eh = elf.get_section_by_name(".eh_frame")
            if eh is not None and eh["sh_type"] != "SHT_NOBITS" and eh["sh_size"]:
                try:
                    return fast_rows(eh.data(), eh["sh_addr"])
                except (_Unknown, IndexError, ValueError, UnicodeDecodeError):
                    pass  # noqa: S110 - a layout the direct reader does not know: pyelftools decodes it
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
    return _table(pcs, kinds, cfas, rbps, ends)


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


# -- a direct reader of .eh_frame, for speed ---------------------------------------------------------
# pyelftools decodes every instruction into objects, which takes seconds for an interpreter's 10,000
# functions; this reader keeps only what the unwinder needs (CFA rule, rbp's slot, whether the return
# address is defined) and gives up (None) on anything it does not know, so pyelftools decides then.
# tests/unit/test_unwind_tables.py checks both give the same rows on real binaries.

_FORMATS = {0x00: ("<Q", 8), 0x02: ("<H", 2), 0x03: ("<I", 4), 0x04: ("<Q", 8), 0x0A: ("<h", 2),
            0x0B: ("<i", 4), 0x0C: ("<q", 8)}


class _Unknown(Exception):
    """Something this reader does not handle: leave the file to pyelftools."""


def _leb128(data: bytes, pos: int, signed: bool) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            if signed and b & 0x40:
                result -= 1 << shift
            return result, pos


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    return _leb128(data, pos, False)


def _sleb(data: bytes, pos: int) -> tuple[int, int]:
    return _leb128(data, pos, True)


def _encoded(data: bytes, pos: int, enc: int, field_addr: int) -> tuple[int, int]:
    import struct

    if enc == 0xFF:
        raise _Unknown("omitted pointer")
    fmt = enc & 0x0F
    if fmt == 0x01:
        value, end = _uleb(data, pos)
    elif fmt == 0x09:
        value, end = _sleb(data, pos)
    elif fmt in _FORMATS:
        code, size = _FORMATS[fmt]
        value, end = struct.unpack_from(code, data, pos)[0], pos + size
    else:
        raise _Unknown(f"pointer format {fmt:#x}")
    app = enc & 0x70
    if app == 0x10:
        value += field_addr
    elif app != 0x00:
        raise _Unknown(f"pointer application {app:#x}")
    if enc & 0x80:
        raise _Unknown("indirect pointer")
    return value & 0xFFFFFFFFFFFFFFFF, end


def fast_rows(data: bytes, section_addr: int) -> np.ndarray:
    """The unwind rows of an .eh_frame section's bytes loaded at section_addr; _Unknown where it cannot."""
    import struct

    cies: dict[int, tuple] = {}
    pcs: list[int] = []
    kinds: list[int] = []
    cfas: list[int] = []
    rbps: list[int] = []
    ends: list[int] = []
    pos = 0
    n = len(data)
    while pos + 4 <= n:
        start = pos
        length = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        if length == 0:
            break  # the terminator
        if length == 0xFFFFFFFF:
            raise _Unknown("64-bit .eh_frame")
        end = pos + length
        id_at = pos
        cie_id = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        if cie_id == 0:
            cies[start] = _cie(data, pos, end, section_addr)
        else:
            cie = cies.get(id_at - cie_id)
            if cie is None:
                raise _Unknown("FDE before its CIE")
            code_align, data_align, enc, has_z, initial = cie
            pc_begin, pos = _encoded(data, pos, enc, section_addr + pos)
            pc_range, pos = _encoded(data, pos, enc & 0x0F, 0)
            if has_z:
                size, pos = _uleb(data, pos)
                pos += size
            try:
                _run(data, pos, end, pc_begin, code_align, data_align, enc, section_addr, initial, pcs, kinds,
                     cfas, rbps)
            except (_Unknown, IndexError):
                # One function this reader cannot follow: its range says so, the others stand.
                pcs.append(pc_begin)
                kinds.append(UNSUPPORTED)
                cfas.append(0)
                rbps.append(0)
            ends.append(pc_begin + pc_range)
        pos = end
    return _table(pcs, kinds, cfas, rbps, ends)


def _cie(data: bytes, pos: int, end: int, section_addr: int) -> tuple:
    version = data[pos]
    pos += 1
    aug_end = data.index(b"\0", pos)
    aug = data[pos:aug_end].decode()
    pos = aug_end + 1
    if "eh" in aug:
        pos += 8
    code_align, pos = _uleb(data, pos)
    data_align, pos = _sleb(data, pos)
    if version == 1:
        pos += 1
    else:
        _, pos = _uleb(data, pos)
    enc = 0x00
    if aug.startswith("z"):
        size, pos = _uleb(data, pos)
        aug_data_end = pos + size
        for ch in aug[1:]:
            if ch == "R":
                enc = data[pos]
                pos += 1
            elif ch == "P":
                penc = data[pos]
                _, pos = _encoded(data, pos + 1, penc & 0x7F, section_addr + pos + 1)
            elif ch == "L":
                pos += 1
            elif ch in "SB":
                continue
            else:
                raise _Unknown(f"augmentation {aug!r}")
        pos = aug_data_end
    # The CIE's initial instructions, run once: the state every FDE starts from.
    state = _State()
    _interpret(data, pos, end, state, code_align, data_align, enc, section_addr, None)
    return code_align, data_align, enc, aug.startswith("z"), state


class _State:
    __slots__ = ("cfa_reg", "cfa_off", "cfa_expr", "rbp", "ra_undefined")

    def __init__(self) -> None:
        self.cfa_reg, self.cfa_off, self.cfa_expr, self.rbp, self.ra_undefined = None, 0, None, None, False

    def copy(self) -> _State:
        out = _State()
        out.cfa_reg, out.cfa_off, out.cfa_expr, out.rbp, out.ra_undefined = (
            self.cfa_reg, self.cfa_off, self.cfa_expr, self.rbp, self.ra_undefined)
        return out

    def row(self) -> tuple[int, int, int]:
        if self.ra_undefined:
            return END, 0, 0
        if self.cfa_expr is not None:
            expr = self.cfa_expr
            if (len(expr) == 11 and expr.startswith(_PLT_HEAD) and expr.endswith(_PLT_TAIL)
                    and 0x30 <= expr[6] <= 0x4F):
                return PLT, expr[6] - 0x30, 0
            return UNSUPPORTED, 0, 0
        if self.cfa_reg not in (_REG_RSP, _REG_RBP) or not 0 <= self.cfa_off < 1 << 16:
            return UNSUPPORTED, 0, 0
        rbp = self.rbp
        rbp_off = rbp // 8 if rbp is not None and rbp % 8 == 0 and -128 <= rbp // 8 < 128 else 0
        return (RSP if self.cfa_reg == _REG_RSP else RBP), self.cfa_off, rbp_off


def _run(data, pos, end, pc, code_align, data_align, enc, section_addr, initial: _State, pcs, kinds, cfas, rbps):
    """Append the rows of one FDE (all of them, or none when it raises)."""
    rows: list[tuple[int, tuple[int, int, int]]] = []
    state = initial.copy()
    loc = _interpret(data, pos, end, state, code_align, data_align, enc, section_addr, (pc, initial, rows))
    rows.append((loc, state.row()))
    last: dict[int, tuple[int, int, int]] = {}
    for at, row in rows:
        last[at] = row  # at one address, the last state wins
    for at, (kind, cfa, rbp) in last.items():
        pcs.append(at)
        kinds.append(kind)
        cfas.append(cfa)
        rbps.append(rbp)


def _interpret(data, pos, end, state: _State, code_align, data_align, enc, section_addr, fde) -> int:
    """Run CFA instructions; for an FDE (fde = (pc, the CIE's state, rows)) emit a row per advance."""
    loc = fde[0] if fde else 0
    stack: list[_State] = []
    while pos < end:
        op = data[pos]
        pos += 1
        high, low = op & 0xC0, op & 0x3F
        if high == 0x40:  # advance_loc
            if fde:
                fde[2].append((loc, state.row()))
            loc += low * code_align
            continue
        if high == 0x80:  # offset
            off, pos = _uleb(data, pos)
            if low == _REG_RBP:
                state.rbp = off * data_align
            continue
        if high == 0xC0:  # restore
            _restore(state, low, fde)
            continue
        if op == 0x00:  # nop
            continue
        if op in (0x02, 0x03, 0x04):  # advance_loc1/2/4
            size = {0x02: 1, 0x03: 2, 0x04: 4}[op]
            delta = int.from_bytes(data[pos:pos + size], "little")
            pos += size
            if fde:
                fde[2].append((loc, state.row()))
            loc += delta * code_align
        elif op == 0x01:  # set_loc
            new, pos = _encoded(data, pos, enc, section_addr + pos)
            if fde:
                fde[2].append((loc, state.row()))
            loc = new
        elif op in (0x05, 0x11, 0x2F):  # offset_extended, offset_extended_sf, GNU_negative_offset_extended
            reg, pos = _uleb(data, pos)
            off, pos = (_sleb if op == 0x11 else _uleb)(data, pos)
            if reg == _REG_RBP:
                state.rbp = -off * data_align if op == 0x2F else off * data_align
        elif op == 0x06:  # restore_extended
            reg, pos = _uleb(data, pos)
            _restore(state, reg, fde)
        elif op in (0x07, 0x08):  # undefined, same_value
            reg, pos = _uleb(data, pos)
            if reg == _REG_RBP:
                state.rbp = None
            if reg == _REG_RA:
                state.ra_undefined = op == 0x07
        elif op == 0x09:  # register
            reg, pos = _uleb(data, pos)
            _, pos = _uleb(data, pos)
            if reg == _REG_RBP:
                state.rbp = None
            if reg == _REG_RA:
                raise _Unknown("return address in a register")
        elif op == 0x0A:  # remember_state
            stack.append(state.copy())
        elif op == 0x0B:  # restore_state
            if not stack:
                raise _Unknown("restore_state without remember_state")
            saved = stack.pop()
            state.cfa_reg, state.cfa_off, state.cfa_expr, state.rbp, state.ra_undefined = (
                saved.cfa_reg, saved.cfa_off, saved.cfa_expr, saved.rbp, saved.ra_undefined)
        elif op in (0x0C, 0x12):  # def_cfa, def_cfa_sf
            state.cfa_reg, pos = _uleb(data, pos)
            off, pos = (_uleb if op == 0x0C else _sleb)(data, pos)
            state.cfa_off = off if op == 0x0C else off * data_align
            state.cfa_expr = None
        elif op == 0x0D:  # def_cfa_register
            state.cfa_reg, pos = _uleb(data, pos)
            state.cfa_expr = None
        elif op in (0x0E, 0x13):  # def_cfa_offset, def_cfa_offset_sf
            off, pos = (_uleb if op == 0x0E else _sleb)(data, pos)
            state.cfa_off = off if op == 0x0E else off * data_align
        elif op == 0x0F:  # def_cfa_expression
            size, pos = _uleb(data, pos)
            state.cfa_expr = bytes(data[pos:pos + size])
            pos += size
        elif op in (0x10, 0x16):  # expression, val_expression
            reg, pos = _uleb(data, pos)
            size, pos = _uleb(data, pos)
            pos += size
            if reg == _REG_RBP:
                state.rbp = None
            if reg == _REG_RA:
                raise _Unknown("return address by expression")
        elif op in (0x14, 0x15):  # val_offset, val_offset_sf
            reg, pos = _uleb(data, pos)
            _, pos = (_uleb if op == 0x14 else _sleb)(data, pos)
            if reg in (_REG_RBP, _REG_RA):
                raise _Unknown("val_offset of rbp or the return address")
        elif op == 0x2E:  # GNU_args_size
            _, pos = _uleb(data, pos)
        else:
            raise _Unknown(f"CFA opcode {op:#x}")
    return loc


def _restore(state: _State, reg: int, fde) -> None:
    initial = fde[1] if fde else _State()
    if reg == _REG_RBP:
        state.rbp = initial.rbp
    elif reg == _REG_RA:
        state.ra_undefined = initial.ra_undefined


def _table(pcs, kinds, cfas, rbps, ends) -> np.ndarray:
    """Rows sorted by pc from each function's rows and where each function ends."""
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
