"""The recordings on one host: started, ticked in the background, shown, stopped, ended at their max age.

A node pod holds one `Recorders` for as long as it lives; on a host without a cluster each recording has
a recorder process of its own (`gadgetbook.recorders.daemon`) holding one. Both serve the same API
(`gadgetbook.recorders.api`).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from gadgetbook import catalog
from gadgetbook.errors import GadgetError
from gadgetbook.kinds import kind_of
from gadgetbook.targets.local import Container, LocalContainers, container_of_pid, pids_by_mntns
from gadgetbook.targets.selector import Selector

log = logging.getLogger("gadgetbook.recorders")
PENDING_SECONDS = 5.0  # how long a namespace born during a recording may stay unnamed by a runtime
LIVENESS_SECONDS = 1.0
ASK_SECONDS = 0.25  # between questions to a runtime about a container it did not know yet
ASK_TRIES = 8
TICK_SECONDS = 0.05


class NotRecorded(GadgetError):
    """A recording id this host does not hold."""


@dataclass
class RecorderTarget:
    """What a recording selects: by label selector and/or container name (its containers are also caught
    at birth), or by container ids (a cluster's client resolved the pods) with their names."""

    selector: str | None = None
    container: str | None = None
    namespace: str | None = None  # a cluster's -n and -p, kept to find the recording by the same flags
    podname: str | None = None
    container_ids: dict[str, tuple[str, str, str]] | None = None
    description: str = ""

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> RecorderTarget:
        ids = d.get("container_ids")
        return cls(selector=d.get("selector") or None, container=d.get("container") or None,
                   namespace=d.get("namespace") or None, podname=d.get("podname") or None,
                   container_ids={k.split("://", 1)[-1]: tuple(v) for k, v in ids.items()} if ids is not None else None,
                   description=d.get("description") or "")

    def __post_init__(self) -> None:
        self._selector = Selector.parse(self.selector) if self.selector else None
        if not self.description:
            flags = [f"{flag} {v}" for flag, v in (("-n", self.namespace), ("-p", self.podname),
                                                   ("-l", self.selector), ("-c", self.container)) if v]
            self.description = " ".join(flags) or "containers by id"

    @property
    def births(self) -> bool:
        """Containers that start later are caught from their first syscalls (local selectors)."""
        return self.container_ids is None

    def matches(self, c: Container) -> bool:
        if self.container_ids is not None:
            return c.id in self.container_ids
        return ((self._selector is None or self._selector.matches(c.labels))
                and (self.container is None or c.name == self.container))

    def names(self, c: Container) -> tuple[str, str, str]:
        if self.container_ids is not None and c.id in self.container_ids:
            return self.container_ids[c.id]
        return (c.namespace, c.pod, c.name)

    def flags(self) -> dict[str, str | None]:
        """The target flags as given at start: `show` and `stop` find a recording by them."""
        return {"selector": self.selector, "container": self.container, "namespace": self.namespace,
                "podname": self.podname}

    def wire(self) -> dict[str, Any]:
        return {**self.flags(), "description": self.description, "container_ids": self.container_ids}


@dataclass
class RecordedContainer:
    slot: int
    mntns: int
    id: str
    names: tuple[str, str, str]  # namespace, pod, container
    since: float
    from_birth: bool = False  # recorded from its first syscall (it started during the recording)
    state: str = "recording"  # or "exited"
    ended: float | None = None


@dataclass
class _Pending:
    mntns: int
    pid: int
    born: float
    seen: dict[str, str] = field(default_factory=dict)  # container id -> runtime, from the processes' cgroups
    asked: float = 0.0
    tries: int = 0


class Recording:
    """One recording on this host: its kernel recorder and the containers it records."""

    def __init__(self, gadget: str, params: dict[str, Any], target: RecorderTarget, node: str,
                 inventory: LocalContainers | None = None) -> None:
        self.spec = catalog.get(gadget)
        self.kind = kind_of(self.spec)
        if not self.kind.verbs:
            raise GadgetError(f"{gadget} is not a recorder; run it with `gadgetbook {gadget}`.")
        self.params = self.spec.checked_params(params)
        settings = self.kind.settings(self.params)
        # The start time is part of the id: a client can tell a recording that ended with its node pod.
        self.id = f"{gadget}-{int(time.time()):x}{secrets.token_hex(2)}"
        self.target = target
        self.node = node
        self.inventory = inventory or LocalContainers()
        self.entries = settings.entries
        self.max_age = settings.max_age
        self.started = time.time()
        self.lock = threading.RLock()
        self.containers: dict[int, RecordedContainer] = {}
        self.pending: dict[int, _Pending] = {}
        self._last_liveness = 0.0
        self.ended: str | None = None
        chosen = [c for c in self.inventory.refresh() if target.matches(c)]
        if not chosen and not target.births:
            raise GadgetError(f"None of the containers asked for runs on {node}; nothing was recorded.")
        self.kernel = self.kind.record(self.params, births=target.births)
        try:
            for c in chosen:
                for m in sorted(c.mntns_ids):
                    slot = self.kernel.add(m)
                    self.containers[slot] = RecordedContainer(slot, m, c.id, target.names(c), self.started)
        except BaseException:
            self.kernel.close()
            raise
        from gadgetbook.frames.syscalls import SyscallDecoder
        from gadgetbook.kernel.syscalls import syscall_table

        self.decoder = SyscallDecoder(syscall_table())

    # -- the background --

    def tick(self) -> None:
        """Take births, name them or let them go; notice containers that exited."""
        from gadgetbook.kinds.recorder import BIRTH, REUSED

        with self.lock:
            if self.ended:
                return
            now = time.time()
            for e in self.kernel.namespace_events().tolist():
                _, mntns, kind, slot, pid = e[:5]
                if kind == BIRTH:
                    log.info("%s: mount namespace %d born (pid %d), slot %d", self.id, mntns, pid, slot)
                    self.kernel.born(slot)
                    self.pending[slot] = _Pending(mntns, pid, now)
                elif kind == REUSED:
                    log.info("%s: mount namespace number %d reused: the old one is gone", self.id, mntns)
                    self._exited(mntns, now)
            due = now - self._last_liveness >= LIVENESS_SECONDS
            if not (self.pending or due):
                return
            live = {rc.mntns for rc in self.containers.values() if rc.state == "recording"}
            pids = pids_by_mntns(live | {p.mntns for p in self.pending.values()})
            for slot, p in list(self.pending.items()):
                self._identify(slot, p, pids.get(p.mntns, []), now)
            if due:
                self._last_liveness = now
                for mntns in live - pids.keys():
                    self._exited(mntns, now)

    def _identify(self, slot: int, p: _Pending, pids: list[int], now: float) -> None:
        # The container id is read while a process lives (its cgroup); the runtime may name it later, also
        # after it has exited: short-lived containers are kept all the same.
        for pid in pids:
            hit = container_of_pid(pid)
            if hit is not None:
                p.seen.setdefault(hit[1], hit[0])
        if p.seen and now - p.asked >= ASK_SECONDS:
            p.asked = now
            p.tries += 1
            for cid, runtime in p.seen.items():
                c = self.inventory.lookup(runtime, cid)
                if c is None:
                    continue
                log.info("%s: namespace %d is container %s (%s): %s", self.id, p.mntns, c.name, cid[:12],
                         "kept" if self.target.matches(c) else "released")
                if self.target.matches(c):
                    self.kernel.adopt(slot, p.mntns)
                    self.containers[slot] = RecordedContainer(slot, p.mntns, c.id, self.target.names(c), p.born,
                                                              from_birth=True)
                else:
                    self.kernel.release(slot, p.mntns)
                del self.pending[slot]
                return
        # Not a container (no container id), one of a runtime that does not answer for it (another podman
        # root, a containerd gadgetbook cannot reach), or one that never got a name: its slot goes back.
        if (not pids and not p.seen) or p.tries >= ASK_TRIES or now - p.born > PENDING_SECONDS:
            log.info("%s: namespace %d released unnamed (containers seen: %s)", self.id, p.mntns, sorted(p.seen))
            self.kernel.release(slot, p.mntns)  # not a container, or one no runtime would name
            del self.pending[slot]

    def _exited(self, mntns: int, now: float) -> None:
        for rc in self.containers.values():
            if rc.mntns == mntns and rc.state == "recording":
                log.info("%s: container %s exited", self.id, rc.names[2])
                self.kernel.seal(rc.slot)
                rc.state, rc.ended = "exited", now

    # -- what clients ask --

    def info(self, counts: bool = False) -> dict[str, Any]:
        from gadgetbook.kernel.syscalls import syscall_table

        with self.lock:
            out = []
            for rc in sorted(self.containers.values(), key=lambda r: (r.names, r.slot)):
                head = int(self.kernel.heads[rc.slot]) if self.kernel.heads is not None else 0
                entry = {"namespace": rc.names[0], "pod": rc.names[1], "container": rc.names[2], "id": rc.id,
                         "mntns_id": rc.mntns, "node": self.node, "since": rc.since, "from_birth": rc.from_birth,
                         "state": rc.state,
                         "ended": rc.ended, "recorded": head, "kept": min(head, self.entries),
                         "overwritten": max(0, head - self.entries)}
                if counts:
                    names = syscall_table().names
                    entry["syscalls"] = {names.get(nr, str(nr)): n
                                         for nr, n in sorted(self.kernel.syscall_counts(rc.slot).items())}
                out.append(entry)
            return {"id": self.id, "gadget": self.spec.name, "node": self.node, "target": self.target.wire(),
                    "params": self.params, "started": self.started, "max_age": self.max_age,
                    "ends": self.started + self.max_age, "entries": self.entries, "containers": out,
                    "architectures": list(syscall_table().arch_names), "waiting": len(self.pending),
                    "births_missed": 0 if self.ended else self.kernel.births_missed(), "ended": self.ended}

    def show(self) -> tuple[dict, dict[str, Any]]:
        """Everything recorded now, oldest first per container, and the facts; exited containers are
        handed over and released."""
        from gadgetbook.run_handle import concat

        with self.lock:
            batches = []
            for rc in sorted(self.containers.values(), key=lambda r: (r.names, r.slot)):
                records, _ = self.kernel.read(rc.slot)
                batches.append(self.decoder.decode(records, self.node, rc.names, rc.mntns))
            info = self.info(counts=True)
            for slot, rc in list(self.containers.items()):
                if rc.state == "exited":
                    self.kernel.release(slot)
                    del self.containers[slot]
        columns = self.kind.columns()
        batch = concat(batches, columns) if batches else self.kind.empty()
        return batch, info

    def close(self, why: str) -> None:
        with self.lock:
            if not self.ended:
                self.ended = why
                self.kernel.close()


class Recorders:
    """The recordings of one host, ticked by a thread of their own; `on_empty` is called when the last ends."""

    def __init__(self, node: str, on_empty=None) -> None:
        self.node = node
        self.recordings: dict[str, Recording] = {}
        self._lock = threading.Lock()
        self._on_empty = on_empty
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gadgetbook-recorders", daemon=True)
        self._thread.start()

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        target = RecorderTarget.from_wire(request.get("target") or {})
        with self._lock:
            for other in self.recordings.values():
                if other.target.flags() == target.flags():
                    raise GadgetError(f"{other.target.description} is already recorded by {other.id} on {self.node}; "
                                      "show it, or stop it before starting again.")
        rec = Recording(str(request.get("gadget", "")), request.get("params") or {}, target, self.node)
        with self._lock:
            clash = [(o.id, rc.names[2]) for o in self.recordings.values() for rc in o.containers.values()
                     if rc.state == "recording" and rc.id in {c.id for c in rec.containers.values()}]
            if clash:
                rec.close("refused")
                rid, name = clash[0]
                raise GadgetError(f"Container {name} is already recorded by {rid} on {self.node}; "
                                  "show it, or stop it before starting again.")
            self.recordings[rec.id] = rec
        return rec.info()

    def get(self, rid: str) -> Recording:
        with self._lock:
            rec = self.recordings.get(rid)
        if rec is None:
            raise NotRecorded(f"No recording {rid} on {self.node} (it was stopped, or ended at its max age).")
        return rec

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            recs = list(self.recordings.values())
        return [r.info() for r in recs]

    def show(self, rid: str) -> tuple[dict, dict[str, Any]]:
        return self.get(rid).show()

    def stop(self, rid: str) -> tuple[dict, dict[str, Any]]:
        rec = self.get(rid)
        batch, info = rec.show()
        self._end(rec, "stopped")
        info["ended"] = "stopped"
        return batch, info

    def _end(self, rec: Recording, why: str) -> None:
        rec.close(why)
        with self._lock:
            self.recordings.pop(rec.id, None)
            empty = not self.recordings
        if empty and self._on_empty is not None:
            self._on_empty()

    def _loop(self) -> None:
        import select

        while not self._stop.is_set():
            with self._lock:
                recs = list(self.recordings.values())
            # Woken at once by a birth: a short-lived container must be named while one of its processes lives.
            fds = [r.kernel.events_fd() for r in recs if not r.ended]
            try:
                select.select(fds, [], [], TICK_SECONDS) if fds else self._stop.wait(TICK_SECONDS)
            except (OSError, ValueError):
                self._stop.wait(TICK_SECONDS)  # a recording closed meanwhile
            for rec in recs:
                try:
                    if time.time() >= rec.started + rec.max_age:
                        self._end(rec, "max age")
                    else:
                        rec.tick()
                except Exception as exc:  # noqa: BLE001 - one recording failing ends only itself
                    log.exception("%s failed", rec.id)
                    rec.close(f"failed: {exc}")
                    self._end(rec, f"failed: {exc}")

    def close(self) -> None:
        self._stop.set()
        for rec in list(self.recordings.values()):
            rec.close("server shutdown")
        self.recordings.clear()
