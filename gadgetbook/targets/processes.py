"""The processes of the targets as they are now (executable and command line), read from /proc: what an
investigation knows of processes that started before it, whose exec it never saw."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable


def snapshot(mntns_ids: Iterable[int] | None, node: str, containers=None) -> list[dict]:
    """One entry per process of these mount namespaces (every process when None): pid, comm, exe, cmdline, and
    its container's names when `containers` (LocalContainers) is given."""
    wanted = None if mntns_ids is None else set(mntns_ids)
    taken = time.time()
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = entry.name
        try:
            mntns = os.stat(f"/proc/{pid}/ns/mnt").st_ino
            if wanted is not None and mntns not in wanted:
                continue
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                exe = ""  # a kernel thread
        except OSError:
            continue  # gone meanwhile
        if not argv and not exe:
            continue
        out.append({"node": node, "pid": int(pid), "comm": comm, "exe": exe, "cmdline": " ".join(argv),
                    "taken": taken, "mntns_id": mntns})
    if containers is not None:
        names = containers.names([p["mntns_id"] for p in out])
        for p, (namespace, pod, container) in zip(out, names):
            p |= {"namespace": namespace, "pod": pod, "container": container}
    return out
