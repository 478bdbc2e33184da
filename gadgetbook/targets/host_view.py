"""The host seen from inside a node pod: paths in its root filesystem, and the cgroups of its processes.

A node pod shares the host's processes (hostPID) but not its files, and on cgroup v2 hosts not its cgroup
namespace either. The process that started the pod's container (the runtime's shim) lives in the host's, and
lends them through /proc: its root and mount table, and its cgroup namespace. A node served straight from a
host (a lab VM, a test) is that host, and reads everything as it is.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import TypeVar

from gadgetbook.errors import GadgetError

CLONE_NEWCGROUP = 0x02000000
_MAX_LINKS = 40  # as the kernel's own limit on links followed in one path
T = TypeVar("T")


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _ns(pid: int | str, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


class HostView:
    """The host as a process in its namespaces sees it (`pid`), or as this process does (None: on the host)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.root = Path(f"/proc/{pid}/root") if pid else Path("/")

    def path(self, host_path: str) -> Path:
        """A path as the host resolves it, reached from here: its absolute links are followed within the
        host's root (the kernel would follow them within this container's)."""
        if self.pid is None:
            return Path(host_path)
        todo = list(PurePosixPath(host_path).parts[1:])
        done = PurePosixPath("/")
        links = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                done = done.parent
                continue
            here = self.root / (done / part).relative_to("/")
            if not here.is_symlink():
                done = done / part
                continue
            links += 1
            if links > _MAX_LINKS:
                raise GadgetError(f"{host_path} on the host has too many levels of links.")
            target = PurePosixPath(os.readlink(here))
            if target.is_absolute():
                done = PurePosixPath("/")
                todo = list(target.parts[1:]) + todo
            else:
                todo = list(target.parts) + todo
        return self.root / done.relative_to("/")

    def cgroup2(self) -> Path | None:
        """Where the host mounts the cgroup v2 hierarchy (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid
        hosts), reached from here; None when it mounts none."""
        try:
            with open(f"/proc/{self.pid or 'self'}/mountinfo") as f:
                for line in f:
                    left, _, right = line.partition(" - ")
                    if right.split(" ", 1)[0] == "cgroup2":
                        return self.root / left.split()[4].lstrip("/")
        except OSError:
            pass
        return None

    def cgroup_paths(self, pids: Iterable[int]) -> dict[int, str]:
        """Each process's path in the host's cgroup v2 hierarchy (gone processes left out). /proc shows a
        cgroup relative to the reader's cgroup namespace: a pod with one of its own reads them in the host's."""
        def read() -> dict[int, str]:
            found = {}
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/cgroup") as f:
                        path = next((line[3:].strip() for line in f if line.startswith("0::")), None)
                except OSError:
                    continue  # gone since it was listed
                if path is not None:
                    found[pid] = path
            return found

        if self.pid is None or _ns("self", "cgroup") == _ns(self.pid, "cgroup"):
            return read()
        return _in_cgroup_namespace(f"/proc/{self.pid}/ns/cgroup", read)


def _in_cgroup_namespace(ns_file: str, fn: Callable[[], T]) -> T:
    """fn's value, called on a thread of its own that first joins the cgroup namespace `ns_file` (a
    namespace is a thread's own: the process's other threads stay where they are, and the thread ends)."""
    out: list = []

    def work() -> None:
        try:
            fd = os.open(ns_file, os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWCGROUP) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            out.append(fn())
        except OSError as exc:
            out.append(exc)

    thread = threading.Thread(target=work, name="gadgetbook-host-cgroups")
    thread.start()
    thread.join()
    if isinstance(out[0], OSError):
        raise GadgetError(f"Cannot read the host's cgroups from this pod ({out[0].strerror}); the node pod must be "
                          "privileged.")
    return out[0]


@functools.cache
def host_view() -> HostView:
    """The host as this process can see it: in a container, through the nearest ancestor outside it (the
    pod's container runtime); on a host (or with no such ancestor in sight), directly."""
    from gadgetbook.targets.local import own_container

    if own_container() is None:
        return HostView(None)
    mine = _ns("self", "mnt")
    try:
        pid = _ppid(os.getpid())
        while pid > 1:
            if _ns(pid, "mnt") != mine:
                return HostView(pid)
            pid = _ppid(pid)
    except OSError:
        pass
    return HostView(None)
