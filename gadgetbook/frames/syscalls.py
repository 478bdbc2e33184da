"""A recorder's syscall records -> columns: syscall names, arguments decoded, return values with errno names."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from gadgetbook.frames.coded import Coded
from gadgetbook.frames.decode import boot_to_wall_ns
from gadgetbook.frames.formats import decode_cstrings, errno_name, open_flags
from gadgetbook.kernel.syscalls import Arg, SyscallTable

COLUMNS = ["timestamp", "node", "namespace", "pod", "container", "pid", "tid", "comm", "syscall", "args", "path",
           "ret", "returned", "error", "duration", "seq", "mntns_id"]
CATEGORICAL = frozenset({"syscall", "error"})
RETURNED = 1  # RECORD_RETURNED in bpf/traceloop
AT_FDCWD = -100
MAX_ERRNO = 4095
_FD_ARGS = frozenset({"fd", "dfd", "olddfd", "newdfd", "oldfd", "newfd", "fromfd", "tofd"})
_OPEN_FLAG_SYSCALLS = frozenset({"open", "openat", "creat", "open_by_handle_at"})
_MODE_ARGS = frozenset({"mode"})
_UNSIGNED = ("unsigned", "size_t", "umode_t", "u32", "u64", "uid_t", "gid_t", "__u32", "__u64", "aio_context_t",
             "key_serial_t", "qid_t", "rwf_t", "cap_user", "__kernel_old_uid_t")


# Syscall families by name, for the timeline's colours; the rest is "other".
FAMILIES = {
    "file": ("open", "openat", "openat2", "creat", "close", "read", "write", "pread64", "pwrite64", "readv",
             "writev", "lseek", "stat", "fstat", "lstat", "newfstatat", "statx", "access", "faccessat",
             "faccessat2", "unlink", "unlinkat", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "getdents64",
             "readlink", "readlinkat", "fcntl", "dup", "dup2", "dup3", "ioctl", "chdir", "fchdir", "getcwd",
             "chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "truncate", "ftruncate", "fsync",
             "mknodat", "symlinkat", "linkat", "statfs", "fstatfs", "mount", "umount2", "pivot_root", "chroot",
             "sendfile", "pipe2", "umask", "flock", "fdatasync", "getxattr", "setxattr", "inotify_add_watch"),
    "net": ("socket", "connect", "accept", "accept4", "bind", "listen", "sendto", "recvfrom", "sendmsg",
            "recvmsg", "setsockopt", "getsockopt", "getsockname", "getpeername", "shutdown", "poll", "ppoll",
            "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_ctl", "epoll_create1", "socketpair"),
    "process": ("execve", "execveat", "clone", "clone3", "fork", "vfork", "exit", "exit_group", "wait4",
                "waitid", "kill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "unshare", "setns",
                "prctl", "arch_prctl", "set_tid_address", "getpid", "getppid", "gettid", "getuid", "geteuid",
                "futex", "nanosleep", "clock_nanosleep", "sched_yield", "setuid", "setgid", "setgroups", "setsid",
                "capget", "capset", "seccomp", "set_robust_list", "rseq", "sigaltstack", "getrlimit", "prlimit64",
                "sethostname", "keyctl", "getrandom", "sched_getaffinity", "rt_sigsuspend", "pause"),
    "memory": ("mmap", "munmap", "mprotect", "mremap", "brk", "madvise"),
}
_FAMILY_OF = {name: fam for fam, names in FAMILIES.items() for name in names}


def by_family(df) -> dict:
    """A recorder's rows split for the timeline: one frame per syscall family present, then the failed ones."""
    family = df["syscall"].astype(str).map(lambda s: _FAMILY_OF.get(s, "other"))
    failed = df["error"].astype(str) != ""
    out = {f: df[(family == f) & ~failed] for f in (*FAMILIES, "other")}
    out["failed"] = df[failed]
    return {name: part for name, part in out.items() if len(part)}


def _int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _int64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _arg_format(syscall: str, arg: Arg) -> Callable[[int, str], str]:
    """How one argument reads: a quoted path, a pointer, AT_FDCWD, open flags, a mode, a number."""
    if arg.is_path:
        return lambda v, path: f'"{path}"' if path or not v else f"0x{v:x}"
    if arg.is_pointer:
        return lambda v, path: f"0x{v:x}" if v else "NULL"
    if arg.name in _FD_ARGS:
        return lambda v, path: "AT_FDCWD" if _int32(v) == AT_FDCWD else str(_int32(v))
    if arg.name == "flags" and syscall in _OPEN_FLAG_SYSCALLS:
        return lambda v, path: open_flags(v & 0xFFFFFFFF)
    if arg.name in _MODE_ARGS:
        return lambda v, path: f"0{v & 0o7777:o}" if v else "0"
    if "flags" in arg.name:
        return lambda v, path: f"0x{v:x}"
    wide = "long" in arg.type or "64" in arg.type or "size_t" in arg.type or "off" in arg.type
    if arg.type.startswith(_UNSIGNED) or arg.type.endswith(_UNSIGNED):
        return (lambda v, path: str(v)) if wide else (lambda v, path: str(v & 0xFFFFFFFF))
    return (lambda v, path: str(_int64(v))) if wide else (lambda v, path: str(_int32(v)))


class SyscallDecoder:
    """Turns one container's records (a numpy structured array, oldest first) into columns."""

    def __init__(self, table: SyscallTable) -> None:
        self.table = table
        self.offset_ns = boot_to_wall_ns()

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - one decoder per recorder, a few hundred syscalls
    def _formats(self, nr: int) -> tuple[Callable[[int, str], str], ...]:
        name = self.table.names.get(nr, "")
        return tuple(_arg_format(name, a) for a in self.table.args.get(nr, ()))

    def args_text(self, nrs: np.ndarray, args: np.ndarray, paths: list[str]) -> np.ndarray:
        out = np.empty(len(nrs), dtype=object)
        for i, (nr, values, path) in enumerate(zip(nrs.tolist(), args.tolist(), paths)):
            fmts = self._formats(nr)
            out[i] = ", ".join(f(v, path) for f, v in zip(fmts, values)) if fmts else \
                ", ".join(f"0x{v:x}" for v in values)
        return out

    def decode(self, records: np.ndarray, node: str, where: tuple[str, str, str], mntns: int) -> dict:
        n = len(records)
        returned = (records["flags"] & RETURNED).astype(bool)
        ret = records["ret"].astype(np.int64)
        failed = returned & (ret < 0) & (ret >= -MAX_ERRNO)
        nrs = records["nr"].astype(np.int64)
        names = self.table.names
        paths = decode_cstrings(records["path"])
        path_text = paths.values().tolist() if n else []
        duration = records["duration_ns"].astype(np.int64).view("timedelta64[ns]").copy()
        duration[~returned] = np.timedelta64("NaT")

        def const(value: str) -> Coded:
            return Coded(np.zeros(n, dtype=np.int32), np.array([value], dtype=object))

        syscall_codes, syscall_nrs = np.unique(nrs, return_inverse=True)
        errors = np.where(failed, -ret, 0)
        error_codes, error_values = np.unique(errors, return_inverse=True)
        return {
            "timestamp": (records["timestamp_raw"].astype(np.int64) + self.offset_ns).view("datetime64[ns]"),
            "node": const(node),
            "namespace": const(where[0]),
            "pod": const(where[1]),
            "container": const(where[2]),
            "pid": records["pid"].astype(np.uint32),
            "tid": records["tid"].astype(np.uint32),
            "comm": decode_cstrings(records["comm"], padded=True),
            "syscall": Coded(syscall_nrs.reshape(-1).astype(np.int32),
                             np.array([names.get(v, f"syscall_{v}") for v in syscall_codes.tolist()], dtype=object)),
            "args": Coded(np.arange(n, dtype=np.int32), self.args_text(nrs, records["args"], path_text)),
            "path": paths,
            "ret": ret,
            "returned": returned,
            "error": Coded(error_values.reshape(-1).astype(np.int32),
                           np.array([errno_name(int(v)) for v in error_codes.tolist()], dtype=object)),
            "duration": duration,
            "seq": records["seq"].astype(np.uint64),
            "mntns_id": np.full(n, mntns, dtype=np.uint64),
        }
