"""User-space symbols: each process's executable mappings, snapshotted while it lives, the ELF symbols
of the mapped files, cached per file identity (device, inode, size, mtime), and the names a JIT
runtime writes to /tmp/perf-PID.map inside the process's root."""

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
    open_path: str = ""  # where this host opens the file (through /proc/PID/map_files or its root)


class ElfCache:
    """ElfSymbols per file identity: a library shared by many processes is read once."""

    def __init__(self) -> None:
        self._files: dict[FileKey, ElfSymbols] = {}

    def get(self, key: FileKey, open_paths: list[str], root: str = "", real_path: str = "") -> ElfSymbols:
        """The file's symbols, read through the first of open_paths that opens (a mapping can change
        between reading /proc/PID/maps and opening its map_files entry)."""
        syms = self._files.get(key)
        if syms is None:
            for path in open_paths:
                syms = ElfSymbols.read(path, root, real_path)
                if syms.segments:
                    break
            self._files[key] = syms
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
        self.jit = PerfMap.read(pid)

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
            key, open_path = None, ""
            if path.startswith("/"):
                key, open_path = _load_file(pid, lo, hi, path, elf)
            mappings.append(Mapping(start, end, offset, path, key, open_path))
        return cls(pid, mappings)

    def refresh_jit(self) -> None:
        """Read the perf map again: a JIT adds names as it compiles."""
        if self.jit is not None or os.path.exists(PerfMap.path_of(self.pid)):
            self.jit = PerfMap.read(self.pid) or self.jit

    def bias(self, mapping: Mapping, elf: ElfCache) -> int | None:
        """What to subtract from an address in `mapping` to get the address its ELF file counts."""
        if mapping.key is None or mapping.key not in elf:
            return None
        for off, vaddr, size in elf[mapping.key].segments:
            if off <= mapping.offset < off + max(size, 1):
                return mapping.start - mapping.offset + off - vaddr
        return None


def _load_file(pid: int, lo: str, hi: str, path: str, elf: ElfCache) -> tuple[FileKey | None, str]:
    real = path.removesuffix(" (deleted)")
    candidates = [f"/proc/{pid}/map_files/{lo}-{hi}", f"/proc/{pid}/root{real}"]
    for i, candidate in enumerate(candidates):
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        elf.get(key, candidates[i:], f"/proc/{pid}/root", real)
        return key, candidate
    return None, ""


class PerfMap:
    """Names of JIT-compiled code from /tmp/perf-PID.map ("START SIZE name" in hex), found inside the
    process's root with the pid the process has in its own namespace (a container's)."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray, names: list[str]) -> None:
        self.starts, self.ends, self.names = starts, ends, names

    @staticmethod
    def path_of(pid: int) -> str:
        return f"/proc/{pid}/root/tmp/perf-{_namespace_pid(pid)}.map"

    @classmethod
    def read(cls, pid: int) -> PerfMap | None:
        try:
            with open(cls.path_of(pid), errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        starts, sizes, names = [], [], []
        for line in lines:
            parts = line.split(None, 2)
            if len(parts) < 3:
                continue
            try:
                starts.append(int(parts[0], 16))
                sizes.append(int(parts[1], 16))
            except ValueError:
                continue
            names.append(parts[2])
        if not starts:
            return None
        order = np.argsort(np.array(starts, dtype=np.uint64), kind="stable")
        st = np.array(starts, dtype=np.uint64)[order]
        return cls(st, st + np.array(sizes, dtype=np.uint64)[order], [names[i] for i in order.tolist()])

    def lookup(self, addresses: np.ndarray) -> np.ndarray:
        """Index of the entry covering each address, or -1 (a later entry for the same code wins)."""
        i = np.searchsorted(self.starts, addresses, side="right").astype(np.int64) - 1
        ok = (i >= 0) & (addresses < self.ends[np.maximum(i, 0)])
        return np.where(ok, i, -1)


def _namespace_pid(pid: int) -> int:
    """The pid as the process itself sees it (the last NSpid), which names its perf map."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass  # noqa: S110 - gone or unreadable: its host pid is the best guess
    return pid


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
        if maps is None or not len(addresses):
            return names, files
        if not len(maps.starts):
            self._jit_names(maps, addresses, np.ones(len(addresses), dtype=bool), names, files)
            return names, files
        m = np.searchsorted(maps.starts, addresses, side="right").astype(np.int64) - 1
        inside = (m >= 0) & (addresses < maps.ends[np.maximum(m, 0)])
        # Code outside any file (JIT code in anonymous memory, or mapped after the snapshot).
        anonymous = ~inside | np.isin(m, [k for k, mp in enumerate(maps.mappings) if mp.key is None and mp.path
                                          not in ("[vdso]",)])
        self._jit_names(maps, addresses, anonymous, names, files)
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

    @staticmethod
    def _jit_names(maps: ProcessMaps, addresses: np.ndarray, where: np.ndarray, names: np.ndarray,
                   files: np.ndarray) -> None:
        if maps.jit is None or not where.any():
            return
        sel = np.flatnonzero(where)
        hit = maps.jit.lookup(addresses[sel])
        for j, h in zip(sel.tolist(), hit.tolist()):
            if h >= 0:
                names[j] = maps.jit.names[h]
                files[j] = "[jit]"
