"""This host's containers: found in /proc/*/cgroup, named and labelled by their runtimes (podman, containerd)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field

from gadgetbook.errors import GadgetError
from gadgetbook.targets.selector import Selector

# Container ids in cgroup paths, by runtime (see PLATFORM notes for the forms).
_CGROUP_IDS = [
    ("podman", re.compile(r"libpod-(?!conmon)([0-9a-f]{64})")),
    ("containerd", re.compile(r"cri-containerd-([0-9a-f]{64})")),
    ("crio", re.compile(r"crio-([0-9a-f]{64})")),
    ("docker", re.compile(r"docker[-/]([0-9a-f]{64})")),
    ("containerd", re.compile(r"/kubepods[^\n]*/pod[0-9a-f_-]+/([0-9a-f]{64})")),
]
# `ctr run` containers sit at /<containerd namespace>/<container id>.
_CTR_PATH = re.compile(r"^\d+:[^:]*:/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$", re.M)
CONTAINERD_SOCKET = os.environ.get("GADGETBOOK_CONTAINERD_SOCKET", "/run/containerd/containerd.sock")


@dataclass
class Container:
    id: str
    runtime: str
    name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    namespace: str = ""
    pod: str = ""
    mntns_ids: set[int] = field(default_factory=set)
    pids: list[int] = field(default_factory=list)


def mntns_of(pid: int | str) -> int:
    return os.stat(f"/proc/{pid}/ns/mnt").st_ino


def scan_proc() -> dict[str, Container]:
    """Container id -> Container with the pids and mount namespaces seen in /proc now."""
    found: dict[str, Container] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cgroup") as f:
                text = f.read()
            mntns = mntns_of(entry.name)
        except OSError:
            continue  # the process went away
        hit = _container_of(text)
        if hit is None:
            continue
        runtime, cid = hit
        c = found.setdefault(cid, Container(id=cid, runtime=runtime))
        c.mntns_ids.add(mntns)
        c.pids.append(int(entry.name))
    return found


def _container_of(cgroup_text: str) -> tuple[str, str] | None:
    for runtime, pattern in _CGROUP_IDS:
        m = pattern.search(cgroup_text)
        if m:
            return runtime, m.group(1)
    m = _CTR_PATH.search(cgroup_text)
    if m and m.group(1) not in ("user.slice", "system.slice", "init.scope", "kubepods", "libpod_parent"):
        return "ctr", f"{m.group(1)}/{m.group(2)}"
    return None


def _podman_metadata() -> dict[str, tuple[str, dict[str, str]]]:
    if not shutil.which("podman"):
        return {}
    try:
        out = subprocess.run(
            ["podman", "ps", "--format", "json", "--no-trunc"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
        return {
            c["Id"]: ((c.get("Names") or [""])[0], c.get("Labels") or {})
            for c in json.loads(out or "[]")
        }
    except (subprocess.SubprocessError, ValueError, OSError):
        return {}


def _containerd_metadata(container: Container) -> bool:
    """Name and labels from containerd, for kubelet (k8s.io) and `ctr` containers; False if it knows none."""
    if not (shutil.which("ctr") and os.path.exists(CONTAINERD_SOCKET)):
        return False
    namespace, _, cid = container.id.rpartition("/")
    try:
        out = subprocess.run(
            ["ctr", "-a", CONTAINERD_SOCKET, "-n", namespace or "k8s.io", "containers", "info", cid],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        labels = json.loads(out).get("Labels") or {}
    except (subprocess.SubprocessError, ValueError, OSError):
        return False
    container.labels = labels
    container.name = labels.get("io.kubernetes.container.name", cid)
    container.pod = labels.get("io.kubernetes.pod.name", "")
    container.namespace = labels.get("io.kubernetes.pod.namespace", "")
    return True


class LocalContainers:
    """Inventory of this host's containers, refreshed when an unknown mount namespace shows up."""

    def __init__(self, min_refresh_s: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Container] = {}
        self._by_mntns: dict[int, Container] = {}
        self._scanned_at = 0.0
        self._unresolved: set[int] = set()  # namespaces a refresh did not explain: not containers
        self._min_refresh_s = min_refresh_s
        try:
            self.host_mntns = mntns_of(1)
        except OSError:  # pid 1 hidden (a sandbox): our own namespace stands for the host's
            self.host_mntns = mntns_of("self")

    def refresh(self) -> list[Container]:
        found = scan_proc()
        podman = _podman_metadata() if any(c.runtime == "podman" for c in found.values()) else {}
        with self._lock:
            for cid, c in found.items():
                known = self._by_id.get(cid)
                if known is not None and (known.name or known.labels):
                    known.mntns_ids |= c.mntns_ids
                    known.pids = c.pids
                    continue
                if c.runtime == "podman" and cid in podman:
                    c.name, c.labels = podman[cid]
                elif c.runtime == "containerd":
                    _containerd_metadata(c)
                elif c.runtime == "ctr" and not _containerd_metadata(c):
                    continue  # a cgroup path of that shape that containerd does not know
                if not c.name:
                    c.name = cid[:12]
                self._by_id[cid] = c
            self._by_mntns = {m: c for c in self._by_id.values() for m in c.mntns_ids}
            self._scanned_at = time.monotonic()
            return list(self._by_id.values())

    def select(self, selector: Selector | None = None, name: str | None = None) -> list[Container]:
        """Running containers that match a label selector and/or a container name."""
        return [
            c for c in self.refresh()
            if (selector is None or selector.matches(c.labels)) and (name is None or c.name == name)
        ]

    def ids(self, mntns_ids: list[int]) -> list[str]:
        """Container id for each mount-namespace id ("" for the host and the unknown)."""
        self.names(mntns_ids)  # refreshes when some are new
        return [c.id if (c := self._by_mntns.get(m)) else "" for m in mntns_ids]

    def names(self, mntns_ids: list[int]) -> list[tuple[str, str, str]]:
        unknown = {m for m in mntns_ids if m not in self._by_mntns and m != self.host_mntns} - self._unresolved
        if unknown and time.monotonic() - self._scanned_at > self._min_refresh_s:
            self.refresh()
            self._unresolved |= unknown - self._by_mntns.keys()
        out = []
        for m in mntns_ids:
            c = self._by_mntns.get(m)
            out.append((c.namespace, c.pod, c.name) if c else ("", "", ""))
        return out


@dataclass
class LocalTargets:
    """Whom a run on this host traces: mount namespaces to filter on (None: all) and a description."""

    mntns_ids: set[int] | None
    description: str
    containers: list[Container] = field(default_factory=list)
    pid: int | None = None

    def gone(self) -> list[str]:
        """Sentences for the targets that ended since they were chosen: the process, containers."""
        if self.pid is not None and not os.path.exists(f"/proc/{self.pid}"):
            return [f"Process {self.pid} exited during the run; nothing of it could be seen after that."]
        if not self.containers:
            return []
        running = scan_proc()
        return [f"Container {c.name} stopped during the run; nothing of it could be seen after that."
                for c in self.containers if c.id not in running]


def resolve(inventory: LocalContainers, *, selector: str | None = None, container: str | None = None,
            pid: int | None = None) -> LocalTargets:
    """Containers chosen by label selector and/or name; a GadgetError when none matches."""
    if not (selector or container):
        return LocalTargets(None, f"pid {pid}" if pid else "this host", pid=pid)
    chosen = inventory.select(Selector.parse(selector) if selector else None, container)
    wanted = " and ".join(f"{flag} {v}" for flag, v in (("-l", selector), ("-c", container)) if v)
    if not chosen:
        raise GadgetError(f"No running container on this host matches {wanted}; nothing was traced.")
    names = ", ".join(sorted(c.name for c in chosen))
    return LocalTargets({m for c in chosen for m in c.mntns_ids}, f"containers {names}", chosen, pid)
