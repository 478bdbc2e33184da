"""A small ELF reader: function symbols (.symtab and .dynsym) and load segments, as sorted numpy arrays.

Written for speed: the symbol tables are read whole into numpy and names are decoded only for the
symbols a profile actually hits, which keeps large binaries (a Python interpreter, a browser) cheap.
"""

from __future__ import annotations

import os
import struct

import numpy as np

SHT_SYMTAB, SHT_DYNSYM = 2, 11
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

    @classmethod
    def empty(cls) -> ElfSymbols:
        z = np.zeros(0, dtype=np.uint64)
        return cls(z, z, np.zeros(0, dtype=np.uint32), [], np.zeros(0, dtype=np.uint8), [])

    @classmethod
    def read(cls, path: str) -> ElfSymbols:
        """Symbols of the file at `path`; an empty table for anything that is not a 64-bit little-endian ELF."""
        try:
            with open(path, "rb") as f:
                return _parse(f.fileno()) or cls.empty()
        except (OSError, struct.error, ValueError):
            return cls.empty()

    def __len__(self) -> int:
        return len(self.values)

    def name(self, i: int) -> str:
        name = self._names.get(i)
        if name is None:
            table = self._strtabs[self._strtab_index[i]]
            start = int(self._name_offsets[i])
            end = table.find(b"\0", start)
            name = table[start:end if end >= 0 else None].decode(errors="replace")
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


def _pread(fd: int, size: int, offset: int) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise ValueError("short read")
    return data


def _parse(fd: int) -> ElfSymbols | None:
    ident = _pread(fd, 64, 0)
    if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
        return None  # only ELFCLASS64, little-endian
    (_, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, _) = struct.unpack_from(
        "<HHIQQQIHHHHHH", ident, 16)
    segments = []
    if phnum:
        ph = _pread(fd, phentsize * phnum, phoff)
        for k in range(phnum):
            p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", ph, k * phentsize)
            if p_type == PT_LOAD:
                segments.append((p_offset, p_vaddr, p_filesz))
    sections = []
    if shnum and shoff:
        sh = _pread(fd, shentsize * shnum, shoff)
        for k in range(shnum):
            _, sh_type, _, _, sh_offset, sh_size, sh_link, _, _, sh_entsize = struct.unpack_from(
                "<IIQQQQIIQQ", sh, k * shentsize)
            sections.append((sh_type, sh_offset, sh_size, sh_link, sh_entsize))
    tables, strtabs, which = [], [], []
    for sh_type, offset, size, link, entsize in sections:
        if sh_type not in (SHT_SYMTAB, SHT_DYNSYM) or entsize != SYM64.itemsize or link >= len(sections):
            continue
        syms = np.frombuffer(_pread(fd, size, offset), dtype=SYM64)
        kind = syms["info"] & 0xF
        keep = ((kind == STT_FUNC) | (kind == STT_GNU_IFUNC)) & (syms["shndx"] != 0) & (syms["value"] != 0)
        syms = syms[keep]
        if not len(syms):
            continue
        _, str_off, str_size, _, _ = sections[link]
        tables.append(syms)
        which.append(np.full(len(syms), len(strtabs), dtype=np.uint8))
        strtabs.append(_pread(fd, str_size, str_off))
    if not tables:
        return ElfSymbols(*_empty_arrays(), segments=segments)
    syms = np.concatenate(tables)
    index = np.concatenate(which)
    # .symtab comes first in the file's order usually; on equal addresses keep the first seen.
    order = np.lexsort((np.arange(len(syms)), syms["value"]))
    syms, index = syms[order], index[order]
    first = np.ones(len(syms), dtype=bool)
    first[1:] = syms["value"][1:] != syms["value"][:-1]
    syms, index = syms[first], index[first]
    return ElfSymbols(syms["value"].copy(), syms["size"].copy(), syms["name"].copy(), strtabs, index, segments)


def _empty_arrays():
    z = np.zeros(0, dtype=np.uint64)
    return z, z, np.zeros(0, dtype=np.uint32), [], np.zeros(0, dtype=np.uint8)
