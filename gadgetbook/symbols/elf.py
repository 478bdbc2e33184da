"""A small ELF reader: function symbols (.symtab, .dynsym, and those of .gnu_debugdata and of a separate
debug file), load segments and the build-id, as sorted numpy arrays.

Written for speed: the symbol tables are read whole into numpy and names are decoded only for the
symbols a profile actually hits, which keeps large binaries (a Python interpreter, a browser) cheap.
"""

from __future__ import annotations

import io
import os
import struct

import numpy as np

from gadgetbook.symbols.demangle import demangle

SHT_SYMTAB, SHT_NOTE, SHT_DYNSYM = 2, 7, 11
NT_GNU_BUILD_ID = 3
DEBUG_ROOT = "/usr/lib/debug"
PT_LOAD = 1
STT_FUNC, STT_GNU_IFUNC = 2, 10
SYM64 = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
                  ("value", "<u8"), ("size", "<u8")])


class ElfSymbols:
    """Function symbols of one ELF file, sorted by address, with its PT_LOAD segments."""

    def __init__(self, values: np.ndarray, sizes: np.ndarray, name_offsets: np.ndarray, strtabs: list[bytes],
                 strtab_index: np.ndarray, segments: list[tuple[int, int, int]]) -> None:
        self.values = values
        self.sizes = sizes
        self._name_offsets = name_offsets
        self._strtabs = strtabs
        self._strtab_index = strtab_index
        self.segments = segments  # (file offset, virtual address, size in the file)
        self._names: dict[int, str] = {}
        self.build_id: str | None = None
        self.debuglink: str | None = None
        self.has_symtab = False  # a full symbol table, not only the dynamic one
        self.debug_source = ""  # where extra symbols came from: ".gnu_debugdata" or a debug file's path
        self._debugdata: ElfSymbols | None = None

    @classmethod
    def empty(cls) -> ElfSymbols:
        z = np.zeros(0, dtype=np.uint64)
        return cls(z, z, np.zeros(0, dtype=np.uint32), [], np.zeros(0, dtype=np.uint8), [])

    @classmethod
    def read(cls, path: str, root: str = "", real_path: str = "") -> ElfSymbols:
        """Symbols of the file at `path`; an empty table for anything that is not a 64-bit little-endian ELF.

        A file without a full symbol table gets the symbols of its MiniDebugInfo (.gnu_debugdata) or of
        a separate debug file, found by build-id or debuglink under /usr/lib/debug in `root` (the
        process's root, for a container) and then on this host; `real_path` is the file's path as the
        process sees it (where a debuglink file may sit beside it).
        """
        try:
            with open(path, "rb") as f:
                syms = _parse(f)
        except (OSError, struct.error, ValueError):
            return cls.empty()
        if syms is None:  # not an ELF this reader knows (a stripped file still has its segments)
            return cls.empty()
        if not syms.has_symtab:
            extra = syms._debugdata or _debug_file(syms, root, real_path)
            if extra is not None:
                syms = syms.merged(extra)
        return syms

    def merged(self, other: ElfSymbols) -> ElfSymbols:
        """These symbols plus other's (from a debug file or .gnu_debugdata); this file's segments and identity."""
        values = np.concatenate([self.values, other.values])
        sizes = np.concatenate([self.sizes, other.sizes])
        offsets = np.concatenate([self._name_offsets, other._name_offsets])
        index = np.concatenate([self._strtab_index, other._strtab_index + len(self._strtabs)]).astype(np.uint8)
        order = np.lexsort((np.arange(len(values)), values))
        first = np.ones(len(order), dtype=bool)
        first[1:] = values[order][1:] != values[order][:-1]
        keep = order[first]
        out = ElfSymbols(values[keep], sizes[keep], offsets[keep], self._strtabs + other._strtabs, index[keep],
                         self.segments)
        out.build_id, out.debuglink, out.has_symtab = self.build_id, self.debuglink, True
        out.debug_source = other.debug_source
        return out

    def __len__(self) -> int:
        return len(self.values)

    def name(self, i: int) -> str:
        name = self._names.get(i)
        if name is None:
            table = self._strtabs[self._strtab_index[i]]
            start = int(self._name_offsets[i])
            end = table.find(b"\0", start)
            name = demangle(table[start:end if end >= 0 else None].decode(errors="replace"))
            self._names[i] = name
        return name

    def file_offset_to_vaddr(self, offsets: np.ndarray) -> np.ndarray:
        """Virtual addresses (as the symbol table counts them) for offsets into the file."""
        out = offsets.astype(np.uint64, copy=True)
        for off, vaddr, size in self.segments:
            inside = (offsets >= off) & (offsets < off + size)
            out[inside] = offsets[inside] - np.uint64(off) + np.uint64(vaddr)
        return out

    def lookup(self, vaddrs: np.ndarray) -> np.ndarray:
        """Index of the symbol covering each address, or -1."""
        if not len(self.values):
            return np.full(len(vaddrs), -1, dtype=np.int64)
        i = np.searchsorted(self.values, vaddrs, side="right").astype(np.int64) - 1
        ok = i >= 0
        j = np.where(ok, i, 0)
        # A sized symbol covers [value, value + size); a size of 0 (hand-written assembly) covers
        # up to the next symbol.
        inside = (self.sizes[j] == 0) | (vaddrs < self.values[j] + self.sizes[j])
        return np.where(ok & inside, i, -1)


def _pread(f, size: int, offset: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("short read")
    return data


def _parse(f, nested: bool = False) -> ElfSymbols | None:
    ident = _pread(f, 64, 0)
    if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
        return None  # only ELFCLASS64, little-endian
    (_, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, _) = struct.unpack_from(
        "<HHIQQQIHHHHHH", ident, 16)
    segments = []
    if phnum:
        ph = _pread(f, phentsize * phnum, phoff)
        for k in range(phnum):
            p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", ph, k * phentsize)
            if p_type == PT_LOAD:
                segments.append((p_offset, p_vaddr, p_filesz))
    sections = []
    names_at = 0
    if shnum and shoff:
        sh = _pread(f, shentsize * shnum, shoff)
        shstrndx = struct.unpack_from("<H", ident, 62)[0]
        for k in range(shnum):
            sh_name, sh_type, _, _, sh_offset, sh_size, sh_link, _, _, sh_entsize = struct.unpack_from(
                "<IIQQQQIIQQ", sh, k * shentsize)
            sections.append((sh_type, sh_offset, sh_size, sh_link, sh_entsize, sh_name))
        if shstrndx < len(sections):
            names_at = shstrndx
    section_names = _section_names(f, sections, names_at)
    tables, strtabs, which = [], [], []
    has_symtab = any(sec[0] == SHT_SYMTAB for sec in sections)
    for sh_type, offset, size, link, entsize, _ in sections:
        if sh_type not in (SHT_SYMTAB, SHT_DYNSYM) or entsize != SYM64.itemsize or link >= len(sections):
            continue
        syms = np.frombuffer(_pread(f, size, offset), dtype=SYM64)
        kind = syms["info"] & 0xF
        keep = ((kind == STT_FUNC) | (kind == STT_GNU_IFUNC)) & (syms["shndx"] != 0) & (syms["value"] != 0)
        syms = syms[keep]
        if not len(syms):
            continue
        _, str_off, str_size, _, _, _ = sections[link]
        tables.append(syms)
        which.append(np.full(len(syms), len(strtabs), dtype=np.uint8))
        strtabs.append(_pread(f, str_size, str_off))
    if not tables:
        out = ElfSymbols(*_empty_arrays(), segments=segments)
    else:
        out = _sorted(tables, which, strtabs, segments)
    out.has_symtab = has_symtab
    if not nested:
        out.build_id = _build_id(f, sections)
        out.debuglink = _debuglink(f, sections, section_names)
        out._debugdata = None if has_symtab else _debugdata(f, sections, section_names)
    return out


def _sorted(tables, which, strtabs, segments) -> ElfSymbols:
    syms = np.concatenate(tables)
    index = np.concatenate(which)
    # .symtab comes first in the file's order usually; on equal addresses keep the first seen.
    order = np.lexsort((np.arange(len(syms)), syms["value"]))
    syms, index = syms[order], index[order]
    first = np.ones(len(syms), dtype=bool)
    first[1:] = syms["value"][1:] != syms["value"][:-1]
    syms, index = syms[first], index[first]
    return ElfSymbols(syms["value"].copy(), syms["size"].copy(), syms["name"].copy(), strtabs, index, segments)


def _section_names(f, sections, names_at: int) -> list[str]:
    if not sections or names_at == 0:
        return [""] * len(sections)
    _, off, size, _, _, _ = sections[names_at]
    table = _pread(f, size, off)
    out = []
    for sec in sections:
        end = table.find(b"\0", sec[5])
        out.append(table[sec[5]:end].decode(errors="replace") if end >= 0 else "")
    return out


def _build_id(f, sections) -> str | None:
    for sh_type, off, size, _, _, _ in sections:
        if sh_type != SHT_NOTE or size > 1 << 16:
            continue
        data = _pread(f, size, off)
        pos = 0
        while pos + 12 <= len(data):
            namesz, descsz, kind = struct.unpack_from("<III", data, pos)
            name_end = pos + 12 + ((namesz + 3) & ~3)
            desc = data[name_end:name_end + descsz]
            if kind == NT_GNU_BUILD_ID and data[pos + 12:pos + 12 + namesz].rstrip(b"\0") == b"GNU":
                return desc.hex()
            pos = name_end + ((descsz + 3) & ~3)
    return None


def _debuglink(f, sections, names) -> str | None:
    for sec, name in zip(sections, names):
        if name == ".gnu_debuglink" and sec[2] < 4096:
            raw = _pread(f, sec[2], sec[1])
            return raw.split(b"\0", 1)[0].decode(errors="replace") or None
    return None


def _debugdata(f, sections, names) -> ElfSymbols | None:
    """MiniDebugInfo: an xz-compressed ELF holding the .symtab that was stripped from this one."""
    import lzma

    for sec, name in zip(sections, names):
        if name == ".gnu_debugdata" and 0 < sec[2] < 1 << 28:
            try:
                inner = lzma.decompress(_pread(f, sec[2], sec[1]))
                syms = _parse(io.BytesIO(inner), nested=True)
            except (lzma.LZMAError, ValueError, struct.error):
                return None
            if syms is not None:
                syms.debug_source = ".gnu_debugdata"
            return syms
    return None


def _debug_file(syms: ElfSymbols, root: str, real_path: str) -> ElfSymbols | None:
    """A separate debug file (by build-id, then by debuglink), inside the process's root first."""
    candidates = []
    if syms.build_id and len(syms.build_id) > 2:
        candidates.append(f"{DEBUG_ROOT}/.build-id/{syms.build_id[:2]}/{syms.build_id[2:]}.debug")
    if syms.debuglink and real_path:
        folder = os.path.dirname(real_path)
        candidates += [f"{folder}/{syms.debuglink}", f"{folder}/.debug/{syms.debuglink}",
                       f"{DEBUG_ROOT}{folder}/{syms.debuglink}"]
    for base in dict.fromkeys((root, "")):
        for path in candidates:
            full = base + path
            if real_path and os.path.normpath(full) == os.path.normpath(base + real_path):
                continue  # a debuglink naming the file itself
            try:
                with open(full, "rb") as f:
                    other = _parse(f, nested=True)
            except (OSError, struct.error, ValueError):
                continue
            if other is not None and len(other):
                other.debug_source = full
                return other
    return None


def _empty_arrays():
    z = np.zeros(0, dtype=np.uint64)
    return z, z, np.zeros(0, dtype=np.uint32), [], np.zeros(0, dtype=np.uint8)
