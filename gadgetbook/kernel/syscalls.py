"""This host's syscalls: names and numbers from libseccomp (as container runtimes name them), and each
syscall's arguments, with the one that is a path, from the running kernel's tracepoint formats."""

from __future__ import annotations

import ctypes as C
import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from gadgetbook.errors import GadgetError
from gadgetbook.kernel.hooks import tracefs
from gadgetbook.kernel.system_library import open_library

MAX_SYSCALLS = 1024  # as bpf/traceloop sizes its tables
# Argument names that hold a path in the kernel's syscall definitions (a pointer to a C string).
PATH_ARGS = frozenset({"filename", "pathname", "path", "oldname", "newname", "specialfile", "to_pathname",
                       "from_pathname", "new_root", "put_old", "dir_name", "special", "library"})
# libseccomp's architecture tokens (AUDIT_ARCH_*) and the names seccomp profiles give them, with the
# architectures a kernel of that kind also runs (the way runtimes' default profiles list them).
_ARCHES = {
    0xC000003E: ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    0xC00000B7: ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
    0xC00000F3: ("SCMP_ARCH_RISCV64",),
    0x80000016: ("SCMP_ARCH_S390X", "SCMP_ARCH_S390"),
    0xC0000015: ("SCMP_ARCH_PPC64LE",),
}
# Tracepoint names that differ from libseccomp's beyond a "new" prefix.
_EVENT_ALIASES = {"sendfile64": "sendfile", "umount": "umount2"}
_FIELD = re.compile(r"field:(.+?)\s*([A-Za-z_][A-Za-z0-9_]*);\s*offset:")


@dataclass(frozen=True)
class Arg:
    name: str
    type: str

    @property
    def is_pointer(self) -> bool:
        return "*" in self.type

    @property
    def is_path(self) -> bool:
        return self.name in PATH_ARGS and "char" in self.type and self.type.count("*") == 1


@functools.cache
def _libseccomp() -> C.CDLL:
    lib = open_library("libseccomp.so.2", "libseccomp2", GadgetError)
    lib.seccomp_syscall_resolve_name.argtypes = [C.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = C.c_int
    lib.seccomp_syscall_resolve_num_arch.argtypes = [C.c_uint32, C.c_int]
    lib.seccomp_syscall_resolve_num_arch.restype = C.c_void_p  # malloc'd: freed below
    lib.seccomp_arch_native.restype = C.c_uint32
    return lib


_libc = C.CDLL(None)
_libc.free.argtypes = [C.c_void_p]


@functools.cache
def _native_names() -> dict[int, str]:
    lib = _libseccomp()
    names: dict[int, str] = {}
    for nr in range(MAX_SYSCALLS):
        ptr = lib.seccomp_syscall_resolve_num_arch(0, nr)  # 0: the native architecture
        if ptr:
            names[nr] = C.string_at(ptr).decode()
            _libc.free(ptr)  # the caller frees the name, says libseccomp's manual
    return names


def syscall_name(number: int) -> str:
    """The name of a syscall number of this architecture: "" for -1 (no syscall), syscall_N where
    libseccomp is missing or does not know the number (a row is never lost for want of a name)."""
    if number < 0:
        return ""
    try:
        return _native_names().get(int(number), f"syscall_{number}")
    except GadgetError:
        return f"syscall_{number}"


class SyscallTable:
    """Names, numbers and arguments of this architecture's syscalls."""

    def __init__(self) -> None:
        self.arch = _libseccomp().seccomp_arch_native()
        self.names: dict[int, str] = dict(_native_names())
        self.numbers = {name: nr for nr, name in self.names.items()}
        self.args = _tracepoint_args(self.numbers)

    def number(self, name: str) -> int | None:
        nr = _libseccomp().seccomp_syscall_resolve_name(name.encode())
        return nr if 0 <= nr < MAX_SYSCALLS else None

    def resolve(self, names: Iterable[str]) -> list[int]:
        """Numbers for syscall names; one sentence naming those this architecture lacks."""
        names = [n.strip() for n in names if n.strip()]
        unknown = [n for n in names if self.number(n) is None]
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            raise GadgetError(f"Unknown syscall name{plural} {', '.join(unknown)} on {self.arch_names[0]}; "
                              "give names as `man 2 syscalls` lists them (open, openat, connect).")
        return [self.number(n) for n in names]

    def path_arg(self, nr: int) -> int:
        """1-based index of the syscall's path argument, 0 when it has none."""
        return next((i + 1 for i, a in enumerate(self.args.get(nr, ())) if a.is_path), 0)

    @property
    def arch_names(self) -> tuple[str, ...]:
        """This architecture as seccomp profiles name it, then the ones its kernel also runs."""
        return _ARCHES.get(self.arch, (f"SCMP_ARCH_{os.uname().machine.upper()}",))


def _tracepoint_args(numbers: dict[str, int]) -> dict[int, tuple[Arg, ...]]:
    """Per syscall number, its arguments as the kernel's sys_enter_* tracepoint formats list them."""
    root = tracefs()
    out: dict[int, tuple[Arg, ...]] = {}
    if root is None:
        return out
    base = os.path.join(root, "events", "syscalls")
    try:
        events = os.listdir(base)
    except OSError:
        return out
    for event in events:
        if not event.startswith("sys_enter_"):
            continue
        name = event[len("sys_enter_"):]
        # The kernel's names for a few differ from libseccomp's (newfstat -> fstat, newuname -> uname).
        name = _EVENT_ALIASES.get(name, name)
        nr = numbers.get(name, numbers.get(name[3:]) if name.startswith("new") else None)
        if nr is None:
            continue
        try:
            with open(os.path.join(base, event, "format")) as f:
                text = f.read()
        except OSError:
            continue
        fields = [Arg(m.group(2), m.group(1).strip()) for m in _FIELD.finditer(text)]
        names = [a.name for a in fields]
        if "__syscall_nr" in names:
            out[nr] = tuple(fields[names.index("__syscall_nr") + 1:])
    return out


@functools.cache
def syscall_table() -> SyscallTable:
    return SyscallTable()
