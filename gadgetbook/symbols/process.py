"""User-space symbols: each process's executable mappings, snapshotted while it lives, and the ELF
symbols of the mapped files, cached per file identity (device, inode, size, mtime)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from gadgetbook.symbols.elf import ElfSymbols

FileKey = tuple[int, int, int, int]


@dataclass
class Mapping:
    start: int
    end: int
    offset: int
    path: str
    key: FileKey | None  # None: no file behind it ([vdso], anonymous memory, JIT code)


class ElfCache:
    """ElfSymbols per file identity: a library shared by many processes is read once."""

    def __init__(self) -> None:
        self._files: dict[FileKey, ElfSymbols] = {}

    def get(self, key: FileKey, open_path: str) -> ElfSymbols:
        syms = self._files.get(key)
        if syms is None:
            syms = self._files[key] = ElfSymbols.read(open_path)
        return syms

    def __getitem__(self, key: FileKey) -> ElfSymbols:
        return self._files[key]

    def __contains__(self, key: FileKey) -> bool:
        return key in self._files


class ProcessMaps:
    """One process's executable mappings, as /proc/PID/maps showed them at the snapshot."""

    def __init__(self, pid: int, mappings: list[Mapping]) -> None:
        self.pid = pid
        self.mappings = sorted(mappings, key=lambda m: m.start)
        self.starts = np.array([m.start for m in self.mappings], dtype=np.uint64)
        self.ends = np.array([m.end for m in self.mappings], dtype=np.uint64)

    @classmethod
    def snapshot(cls, pid: int, elf: ElfCache) -> ProcessMaps | None:
        """Read the maps and load the mapped files' symbols now, while the process exists; None if it is gone.

        Files are opened through /proc/PID/map_files, which reaches them inside another mount
        namespace (a container) and even after they were deleted; /proc/PID/root/PATH is the fallback.
        """
        try:
            with open(f"/proc/{pid}/maps") as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        mappings = []
        for line in lines:
            parts = line.split(None, 5)
            if len(parts) < 5 or "x" not in parts[1]:
                continue
            lo, hi = parts[0].split("-")
            path = parts[5] if len(parts) > 5 else ""
            start, end, offset = int(lo, 16), int(hi, 16), int(parts[2], 16)
            key = None
            if path.startswith("/"):
                key = _load_file(pid, lo, hi, path, elf)
            mappings.append(Mapping(start, end, offset, path, key))
        return cls(pid, mappings)


def _load_file(pid: int, lo: str, hi: str, path: str, elf: ElfCache) -> FileKey | None:
    for candidate in (f"/proc/{pid}/map_files/{lo}-{hi}", f"/proc/{pid}/root{path.removesuffix(' (deleted)')}"):
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        elf.get(key, candidate)
        return key
    return None


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


class UserSymbols:
    """Names user-space addresses of the processes it has snapshotted."""

    def __init__(self) -> None:
        self.elf = ElfCache()
        self.processes: dict[int, ProcessMaps] = {}

    def snapshot(self, pid: int) -> bool:
        """Remember pid's mappings (once); False when the process has already gone."""
        if pid in self.processes:
            return True
        maps = ProcessMaps.snapshot(pid, self.elf)
        if maps is None:
            return False
        self.processes[pid] = maps
        return True

    def lookup(self, pid: int, addresses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(names or None, mapped-file basenames or None) for one process's addresses."""
        addresses = np.asarray(addresses, dtype=np.uint64)
        names = np.full(len(addresses), None, dtype=object)
        files = np.full(len(addresses), None, dtype=object)
        maps = self.processes.get(pid)
        if maps is None or not len(addresses) or not len(maps.starts):
            return names, files
        m = np.searchsorted(maps.starts, addresses, side="right").astype(np.int64) - 1
        inside = (m >= 0) & (addresses < maps.ends[np.maximum(m, 0)])
        for k in np.unique(m[inside]).tolist():
            mapping = maps.mappings[k]
            sel = np.flatnonzero(inside & (m == k))
            files[sel] = basename(mapping.path) or None
            if mapping.key is None or mapping.key not in self.elf:
                if mapping.path == "[vdso]":
                    names[sel] = "[vdso]"
                continue
            syms = self.elf[mapping.key]
            offsets = addresses[sel] - np.uint64(mapping.start) + np.uint64(mapping.offset)
            hit = syms.lookup(syms.file_offset_to_vaddr(offsets))
            for j, h in zip(sel.tolist(), hit.tolist()):
                if h >= 0:
                    names[j] = syms.name(h)
        return names, files
