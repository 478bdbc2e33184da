"""CPython processes: which interpreter a process runs, where its threads' frames are, and the names of
the code objects its frames point to (read from /proc/PID/mem while it runs: no ptrace, no stop).

The offsets are those of the release builds of CPython 3.9 to 3.13 on x86-64 (the same struct layouts
whoever built the interpreter, as long as it is not a debug or free-threaded build); the BPF side of
the profile follows them per process (struct python_process in bpf/profile/program.bpf.c).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

FLAG_EVERY, FLAG_IS_ENTRY, FLAG_OWNER = 0, 1, 2
NO_OFFSET = 0xFFFF
EVAL_LOOP = "_PyEval_EvalFrameDefault"
_NAME = re.compile(r"(?:^|/)(?:lib)?python(\d)\.(\d+)(t?)(?:$|[^0-9])")


@dataclass(frozen=True)
class Layout:
    """Field offsets of one CPython minor version."""

    interp_head: int  # _PyRuntimeState.interpreters.head
    threads_head: int  # PyInterpreterState: the first PyThreadState
    tstate_next: int
    tstate_thread: int  # PyThreadState.thread_id (pthread_self)
    tstate_frame: int  # frame (3.9, 3.10), cframe (3.11, 3.12), current_frame (3.13)
    cframe_frame: int  # _PyCFrame.current_frame, or NO_OFFSET
    frame_back: int
    frame_code: int
    frame_flag: int  # is_entry (3.11), owner (3.12+), or NO_OFFSET
    flag_kind: int
    code_filename: int
    code_name: int
    code_qualname: int | None
    code_firstlineno: int
    ascii_size: int  # sizeof(PyASCIIObject): where a compact ASCII string's characters start
    compact_size: int  # sizeof(PyCompactUnicodeObject): where other compact strings' characters start


_OLD = dict(interp_head=32, threads_head=8, tstate_next=8, tstate_thread=176, tstate_frame=24,
            cframe_frame=NO_OFFSET, frame_back=24, frame_code=32, frame_flag=NO_OFFSET, flag_kind=FLAG_EVERY,
            code_filename=104, code_name=112, code_qualname=None, code_firstlineno=40, ascii_size=48,
            compact_size=72)
_NEW = dict(tstate_next=8, frame_back=8, frame_code=0, frame_flag=70, flag_kind=FLAG_OWNER, code_filename=112,
            code_name=120, code_qualname=128, code_firstlineno=68, ascii_size=40, compact_size=56)
LAYOUTS: dict[tuple[int, int], Layout] = {
    (3, 9): Layout(**_OLD),
    (3, 10): Layout(**_OLD),
    (3, 11): Layout(interp_head=40, threads_head=16, tstate_next=8, tstate_thread=152, tstate_frame=56,
                    cframe_frame=8, frame_back=48, frame_code=32, frame_flag=68, flag_kind=FLAG_IS_ENTRY,
                    code_filename=112, code_name=120, code_qualname=128, code_firstlineno=72, ascii_size=48,
                    compact_size=72),
    (3, 12): Layout(interp_head=40, threads_head=72, tstate_thread=136, tstate_frame=56, cframe_frame=0, **_NEW),
    (3, 13): Layout(interp_head=632, threads_head=7344, tstate_thread=152, tstate_frame=72,
                    cframe_frame=NO_OFFSET, **_NEW),
}
SUPPORTED = ", ".join(f"{a}.{b}" for a, b in LAYOUTS)


@dataclass(frozen=True)
class Interpreter:
    """A CPython found in a process: its version, and its objects' addresses in that process."""

    version: tuple[int, int]
    layout: Layout | None  # None: a version this profiler cannot read
    runtime: int  # &_PyRuntime
    code_type: int  # &PyCode_Type
    none_object: int  # &_Py_NoneStruct
    path: str

    @property
    def label(self) -> str:
        return f"Python {self.version[0]}.{self.version[1]}"


def version_from_name(path: str) -> tuple[int, int, bool] | None:
    """(major, minor, free-threaded) from a file name like python3.11 or libpython3.13t.so.1.0."""
    m = _NAME.search(path)
    return (int(m.group(1)), int(m.group(2)), m.group(3) == "t") if m else None


def find_interpreter(path: str, open_path: str, bias: int) -> Interpreter | None:
    """The interpreter defined by the mapped file (its _PyRuntime), with addresses for a load bias."""
    named = version_from_name(path)
    if named is None or named[0] != 3:
        return None
    symbols = _data_symbols(open_path, ("_PyRuntime", "PyCode_Type", "_Py_NoneStruct", "Py_Version"))
    if "_PyRuntime" not in symbols:
        return None
    major, minor, free_threaded = named
    layout = None if free_threaded else LAYOUTS.get((major, minor))
    return Interpreter((major, minor), layout, bias + symbols["_PyRuntime"], bias + symbols.get("PyCode_Type", 0),
                       bias + symbols["_Py_NoneStruct"] if "_Py_NoneStruct" in symbols else 0, path)


def _data_symbols(path: str, names: tuple[str, ...]) -> dict[str, int]:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    out: dict[str, int] = {}
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for section in elf.iter_sections():
                if not isinstance(section, SymbolTableSection):
                    continue
                for name in names:
                    if name in out:
                        continue
                    found = section.get_symbol_by_name(name)
                    if found and found[0]["st_value"]:
                        out[name] = found[0]["st_value"]
    except (ELFError, OSError, ValueError, KeyError):
        pass  # noqa: S110 - not a readable ELF: no interpreter in it
    return out


class CodeNames:
    """Names of code objects in one process, read from its memory and kept (code objects live long)."""

    def __init__(self, pid: int, interp: Interpreter) -> None:
        self.pid = pid
        self.interp = interp
        self.names: dict[int, str | None] = {}
        self.files: dict[int, str] = {}
        try:
            self._fd: int | None = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
        except OSError:
            self._fd = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def resolve(self, addresses) -> None:
        """Read the names of code objects not seen yet (while the process still exists)."""
        for addr in addresses:
            if addr not in self.names:
                self.names[addr] = self._read(int(addr))

    def _mem(self, addr: int, size: int) -> bytes:
        if self._fd is None:
            raise OSError("process memory not readable")
        data = os.pread(self._fd, size, addr)
        if len(data) != size:
            raise OSError("short read")
        return data

    def _ptr(self, addr: int) -> int:
        return int.from_bytes(self._mem(addr, 8), "little")

    def _read(self, addr: int) -> str | None:
        lay = self.interp.layout
        if lay is None:
            return None
        try:
            if self.interp.code_type and self._ptr(addr + 8) != self.interp.code_type:
                return None  # not a code object (any more)
            name = self._string(self._ptr(addr + (lay.code_qualname if lay.code_qualname is not None
                                                  else lay.code_name)))
            filename = self._string(self._ptr(addr + lay.code_filename))
            line = int.from_bytes(self._mem(addr + lay.code_firstlineno, 4), "little", signed=True)
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        self.files[addr] = f"{filename}:{line}"
        return f"{name} ({filename.rsplit('/', 1)[-1]}:{line})"

    def _string(self, addr: int, limit: int = 1024) -> str:
        lay = self.interp.layout
        head = self._mem(addr, lay.compact_size)
        length = int.from_bytes(head[16:24], "little")
        state = int.from_bytes(head[32:36], "little")
        kind, compact, ascii_ = (state >> 2) & 7, (state >> 5) & 1, (state >> 6) & 1
        if not compact or kind not in (1, 2, 4) or length > limit:
            raise ValueError("not a compact string")
        start = addr + (lay.ascii_size if ascii_ else lay.compact_size)
        raw = self._mem(start, length * kind) if length else b""
        return raw.decode({1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}[kind])
