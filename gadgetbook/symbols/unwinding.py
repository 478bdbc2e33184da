"""The user side of the profile's in-kernel unwinder: per process, its executable mappings and each
mapped binary's unwind table (built from .eh_frame) go into the BPF maps, and for CPython where its
threads' frames are. Tables are shared by every process that maps the same file.

The BPF side (bpf/profile/program.bpf.c) declares the layouts; the dtypes here follow them and are
checked against the object's BTF when the maps are opened.
"""

from __future__ import annotations

import ctypes as C
import os
import tempfile

import numpy as np

from gadgetbook.errors import GadgetError
from gadgetbook.kernel import libbpf
from gadgetbook.symbols import python as cpython
from gadgetbook.symbols.cfi import ROW, UnwindTables, table_from_elf
from gadgetbook.symbols.process import ProcessMaps, UserSymbols

TABLES, PROCESSES, PYTHON = "unwind_tables", "processes", "python_processes"
MAX_MAPPINGS = 512
BPF_MAP_TYPE_ARRAY = 2
BPF_F_INNER_MAP = 1 << 12
MAPPING = np.dtype([("start", "<u8"), ("end", "<u8"), ("bias", "<u8"), ("table", "<u4"), ("rows", "<u4")])
PROCESS = np.dtype([("count", "<u4"), ("_pad", "<u4"), ("m", MAPPING, (MAX_MAPPINGS,))])
PYTHON_PROCESS = np.dtype([
    ("interp_head", "<u8"), ("none_object", "<u8"), ("threads_head", "<u2"), ("tstate_next", "<u2"),
    ("tstate_thread", "<u2"), ("tstate_frame", "<u2"), ("cframe_frame", "<u2"), ("frame_back", "<u2"),
    ("frame_code", "<u2"), ("frame_flag", "<u2"), ("flag_kind", "u1"), ("_pad", "u1", (7,))])
VDSO = ("[vdso]",)


def check_layouts(btf) -> None:
    """The BPF object's structs have the sizes these dtypes assume (a mismatch would corrupt the maps)."""
    from gadgetbook.kernel.btf import STRUCT

    for name, dtype in (("process_maps", PROCESS), ("python_process", PYTHON_PROCESS), ("unwind_row", ROW),
                        ("exec_mapping", MAPPING)):
        size = btf.size_of(btf.find(name, STRUCT))
        if size != dtype.itemsize:
            raise GadgetError(f"profile's object and its user side disagree on struct {name} "
                              f"({size} vs {dtype.itemsize} bytes); rebuild gadgetbook.")


class KernelUnwinding:
    """Registers processes with the loaded profile object; reports per process what it could not do."""

    def __init__(self, obj, user: UserSymbols, tables: UnwindTables | None = None, python: bool = True) -> None:
        check_layouts(obj.btf)
        self.user = user
        self.tables = tables or UnwindTables()
        self.python = python
        self._tables_fd = obj.map_fd(TABLES)
        self._capacity = obj.map_max_entries(TABLES)
        self._processes_fd = obj.map_fd(PROCESSES)
        self._python_fd = obj.map_fd(PYTHON)
        self._slots: dict[object, tuple[int, int]] = {}
        self.registered: set[int] = set()
        self.interpreters: dict[int, cpython.Interpreter] = {}
        self.warnings: dict[int, str] = {}  # per process, what registering it could not do
        self.table_bytes = 0
        self.table_rows = 0
        self._vdso: np.ndarray | None = None

    # -- processes --

    def register(self, pid: int, refresh: bool = False) -> bool:
        """Load pid's mappings (and tables of files not loaded yet); False when the process has gone."""
        if refresh:
            self.user.processes.pop(pid, None)
        if not self.user.snapshot(pid):
            return False
        maps = self.user.processes[pid]
        value = np.zeros(1, PROCESS)
        entries = []
        for m in maps.mappings:
            slot, rows, bias = self._table_for(pid, maps, m)
            entries.append((m.start, m.end, bias, slot, rows))
        entries = entries[:MAX_MAPPINGS]
        value["count"] = len(entries)
        if entries:
            value["m"][0, :len(entries)] = np.array(entries, dtype=MAPPING)
        if libbpf.map_update_elem(self._processes_fd, C.byref(C.c_uint32(pid)), value.ctypes.data, 0):
            raise GadgetError(f"Cannot load the mappings of process {pid} for unwinding: {libbpf.errno_message()}.")
        self.registered.add(pid)
        if len(maps.mappings) > MAX_MAPPINGS:
            self.warnings.setdefault(pid, f"it maps more than {MAX_MAPPINGS} executable regions, and stacks "
                                          "through the rest end with a truncation marker")
        if self.python:
            self._register_python(pid, maps)
        return True

    def _table_for(self, pid: int, maps: ProcessMaps, m) -> tuple[int, int, int]:
        """(slot, rows, bias) of a mapping's unwind table; rows 0 for none (frame pointers are used)."""
        if m.path in VDSO:
            table = self._vdso_table(pid, m)
            key = VDSO
            bias = m.start  # the vDSO image is mapped whole: its addresses count from its start
        elif m.key is None:
            return 0, 0, 0
        else:
            bias = maps.bias(m, self.user.elf)
            if bias is None:
                return 0, 0, 0
            key = m.key
            table = None
        loaded = self._slots.get(key)
        if loaded is None:
            if table is None:
                syms = self.user.elf[m.key]
                table = self.tables.get(m.key, [m.open_path, f"/proc/{pid}/root{m.path}"], syms.build_id)
            loaded = self._load(key, table)
        slot, rows = loaded
        return slot, rows, bias & 0xFFFFFFFFFFFFFFFF

    def _load(self, key: object, table: np.ndarray) -> tuple[int, int]:
        if not len(table) or len(self._slots) >= self._capacity:
            self._slots[key] = (0, 0)
            return 0, 0
        slot = len(self._slots)
        opts = libbpf.MapCreateOpts(sz=C.sizeof(libbpf.MapCreateOpts), map_flags=BPF_F_INNER_MAP)
        fd = libbpf.map_create(BPF_MAP_TYPE_ARRAY, b"unwind_rows", 4, ROW.itemsize, len(table), C.byref(opts))
        if fd < 0:
            raise GadgetError(f"Cannot create an unwind table of {len(table):,} rows: {libbpf.errno_message()}.")
        try:
            keys = np.arange(len(table), dtype=np.uint32)
            rows = np.ascontiguousarray(table)
            count = C.c_uint32(len(table))
            if libbpf.map_update_batch(fd, keys.ctypes.data, rows.ctypes.data, C.byref(count), None):
                raise GadgetError(f"Cannot fill an unwind table: {libbpf.errno_message()}.")
            if libbpf.map_update_elem(self._tables_fd, C.byref(C.c_uint32(slot)), C.byref(C.c_int32(fd)), 0):
                raise GadgetError(f"Cannot add an unwind table: {libbpf.errno_message()}.")
        finally:
            os.close(fd)  # the outer map holds the table now
        self._slots[key] = (slot, len(table))
        self.table_bytes += table.nbytes
        self.table_rows += len(table)
        return slot, len(table)

    def _vdso_table(self, pid: int, m) -> np.ndarray:
        """The vDSO's unwind table, from its image in a process's memory (the same for every process)."""
        if self._vdso is None:
            self._vdso = np.zeros(0, ROW)
            try:
                with open(f"/proc/{pid}/mem", "rb") as mem:
                    mem.seek(m.start)
                    image = mem.read(m.end - m.start)
                with tempfile.NamedTemporaryFile(suffix=".vdso") as f:
                    f.write(image)
                    f.flush()
                    self._vdso = table_from_elf(f.name)
            except OSError:
                pass  # noqa: S110 - unreadable: vDSO frames fall back to frame pointers
        return self._vdso

    # -- CPython --

    def _register_python(self, pid: int, maps: ProcessMaps) -> None:
        for m in maps.mappings:
            if m.key is None or "python" not in m.path.rsplit("/", 1)[-1]:
                continue
            bias = maps.bias(m, self.user.elf)
            if bias is None:
                continue
            interp = cpython.find_interpreter(m.path, m.open_path, bias)
            if interp is None:
                continue
            self.interpreters[pid] = interp
            lay = interp.layout
            if lay is None:
                self.warnings.setdefault(pid, f"it runs {interp.label}, whose frames the profiler cannot read "
                                              f"(it reads CPython {cpython.SUPPORTED}, not free-threaded builds), "
                                              "so its stacks show the interpreter's C functions only")
                return
            value = np.zeros(1, PYTHON_PROCESS)
            value["interp_head"] = interp.runtime + lay.interp_head
            value["none_object"] = interp.none_object if interp.version >= (3, 13) else 0
            for field in ("threads_head", "tstate_next", "tstate_thread", "tstate_frame", "cframe_frame",
                          "frame_back", "frame_code", "frame_flag", "flag_kind"):
                value[field] = getattr(lay, field)
            if libbpf.map_update_elem(self._python_fd, C.byref(C.c_uint32(pid)), value.ctypes.data, 0):
                raise GadgetError(f"Cannot register Python process {pid}: {libbpf.errno_message()}.")
            return

    def forget(self, pid: int) -> None:
        """After an exec: the process is registered again on its next sample."""
        self.registered.discard(pid)
        self.user.processes.pop(pid, None)
        self.interpreters.pop(pid, None)
