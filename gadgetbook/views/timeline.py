"""A recorder's compact timeline: one lane per container, a tick per syscall coloured by what it touches,
failures marked; a PNG (matplotlib) that stays in the saved notebook."""

from __future__ import annotations

import io

import numpy as np

# Syscall families by name, for colour; the rest is "other".
_FAMILIES = {
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
COLORS = {"file": "#4c78a8", "net": "#59a14f", "process": "#b07aa1", "memory": "#9c9c9c", "other": "#f28e2b"}
FAILED = "#d62728"
_FAMILY_OF = {name: fam for fam, names in _FAMILIES.items() for name in names}


def timeline_png(df, width: float = 10.0, lane_height: float = 0.45) -> bytes:
    """The rows of a recorder's DataFrame as one lane per container over wall-clock time."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    lanes = [str(c) or "(host)" for c in dict.fromkeys(df["container"].astype(str))]
    fig = Figure(figsize=(width, 1.0 + lane_height * max(2, len(lanes))), dpi=100)
    ax = fig.add_subplot()
    t0 = df["timestamp"].min()
    seconds = (df["timestamp"] - t0).dt.total_seconds().to_numpy()
    lane_of = {name: i for i, name in enumerate(lanes)}
    y = np.array([lane_of[str(c) or "(host)"] for c in df["container"].astype(str)], dtype=float)
    family = df["syscall"].astype(str).map(lambda s: _FAMILY_OF.get(s, "other")).to_numpy()
    failed = (df["error"].astype(str) != "").to_numpy()
    for fam, color in COLORS.items():
        pick = (family == fam) & ~failed
        if pick.any():
            ax.vlines(seconds[pick], y[pick] - 0.3, y[pick] + 0.3, color=color, linewidth=0.8)
    if failed.any():
        ax.scatter(seconds[failed], y[failed] + 0.38, marker="v", s=14, color=FAILED, zorder=3)
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_ylim(len(lanes) - 0.4, -0.6)
    ax.set_xlabel(f"seconds after {t0:%H:%M:%S.%f}"[:-3])
    ax.spines[["top", "right"]].set_visible(False)
    handles = [Line2D([0], [0], color=c, lw=2, label=f) for f, c in COLORS.items()]
    handles.append(Line2D([0], [0], marker="v", color=FAILED, lw=0, label="failed"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
