"""A run the node API starts for a client: rights checked first, then the gadget's raw frames streamed.

Containers come by id (as Kubernetes reports them) and are traced by their mount namespaces. The node
never decodes: it ships what the kernel wrote, compressed, and tells the client which container each
mount namespace is, so its memory stays flat at any event rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from gadgetbook import catalog, protocol
from gadgetbook.errors import GadgetError
from gadgetbook.kinds import kind_of
from gadgetbook.node.access import Access, Caller
from gadgetbook.targets.local import LocalContainers, mntns_of, own_container

Send = Callable[[Any], None]  # a dict goes as JSON text, bytes as a binary message


def bare_id(container_id: str) -> str:
    """`containerd://abc...` (Kubernetes' form) -> `abc...`."""
    return container_id.split("://", 1)[-1]


class NodeRun:
    """One client's gadget on this host, from the START message to END or ERROR."""

    def __init__(self, msg: dict[str, Any], caller: Caller, access: Access, node: str,
                 frame_interval: float = 0.025, stats_interval: float = 0.5) -> None:
        self._frame_interval, self._stats_interval = frame_interval, stats_interval
        program = msg.get("program")
        if program is None:
            self.spec, object_file = catalog.get(str(msg.get("gadget", ""))), None
        else:  # a program of one's own: an object the client compiled for this kernel, or C for bcc here
            from gadgetbook.programs.wire import spec_from_wire

            self.spec, object_file = spec_from_wire(program)
        try:
            self._open(msg, caller, access, node)
        finally:
            if object_file is not None:
                object_file.unlink(missing_ok=True)  # loaded (or refused): the file has served

    def _open(self, msg: dict[str, Any], caller: Caller, access: Access, node: str) -> None:
        self.kind = kind_of(self.spec)
        self.params = self.spec.checked_params(msg.get("params") or {})
        self.kind.check(self.params)
        self.caller, self.access, self.node = caller, access, node
        self.containers = LocalContainers()
        ids = msg.get("container_ids")
        pid = msg.get("pid")
        # Every right is checked before anything is loaded: a refused request runs no BPF at all.
        if ids is None or pid is not None:
            access.check_host(caller)
            mntns_ids = None
        else:
            mntns_ids = self._allowed_mntns([bare_id(i) for i in ids])
        self.host_wide = mntns_ids is None
        self.include_self = bool(msg.get("include_self"))
        # The node pod's own mount namespace, left out of whole-host runs; a node serving straight from a
        # host (a test, a lab VM) shares the host's and leaves nothing out.
        self._self_mntns = mntns_of("self") if own_container() and pid is None else None
        self._named: set[int] = set()
        self._stop = threading.Event()
        timeout = msg.get("timeout")
        self._deadline = time.monotonic() + float(timeout) if timeout else None
        self.source = self.kind.open(self.params, mntns_ids=mntns_ids, pid=pid,
                                     ring_bytes=int(msg["ring_size"]) if msg.get("ring_size") else None,
                                     containers=self.containers, node=node, raw=True)

    def _allowed_mntns(self, ids: list[str]) -> set[int]:
        namespaces = self.access.namespaces_of(ids)
        if ids and not namespaces:
            raise GadgetError(f"None of the {len(ids)} containers asked for runs on node {self.node}; "
                              "nothing was traced there.")
        self.access.check_namespaces(self.caller, {ns for ns in namespaces.values() if ns})
        found = {c.id: c for c in self.containers.refresh()}
        return {m for cid in namespaces if cid in found for m in found[cid].mntns_ids}

    def add(self, container_ids: list[str]) -> None:
        """Containers that started during the run join its filter (when the caller may trace them)."""
        if self.host_wide:
            return
        mntns = self._allowed_mntns([bare_id(i) for i in container_ids])
        if mntns:
            self.source.add_mntns(mntns)

    def stop(self) -> None:
        self._stop.set()

    # -- streaming --

    def stream(self, send: Send) -> None:
        """Frames and counters until the client stops the run, its timeout, or a failure; then END or ERROR."""
        source = self.source
        next_stats = 0.0
        closed = False
        try:
            while not self._stop.wait(self._frame_interval):
                if self._deadline and time.monotonic() >= self._deadline:
                    break
                self._send_frame(source.poll(), send)
                self._send_tables(send)
                if time.monotonic() >= next_stats:
                    send({"op": protocol.STATS, "lost": source.lost()})
                    next_stats = time.monotonic() + self._stats_interval
            source.finish()  # what the kernel still holds
            self._send_frame(source.poll(), send)
            self._send_tables(send)
            lost = source.lost()
            # Before END: a client that hears it knows this node has let go of the kernel (programs detached,
            # a bcc process gone), as a run on its own host has once it ends.
            closed = True
            source.close()
            send({"op": protocol.END, "lost": lost})
        except Exception as exc:  # the client hears why, then the connection closes
            send({"op": protocol.ERROR, "message": str(exc) or type(exc).__name__, "lost": _lost(source)})
        finally:
            if not closed:
                source.close()

    def _send_frame(self, frame: protocol.Frame | None, send: Send) -> None:
        if frame is None:
            return
        if self.host_wide and not self.include_self and self._self_mntns is not None and frame.mntns is not None:
            keep = frame.mntns != self._self_mntns  # the node's own work is not the host's
            if len(keep) and not keep.any():
                return
            if not keep.all():
                frame = frame.take(keep)
        if frame.mntns is not None and len(frame.mntns):
            fresh = [m for m in np.unique(frame.mntns).tolist() if m not in self._named]
            if fresh:
                self._named.update(fresh)
                names = {str(m): cid for m, cid in zip(fresh, self.containers.ids(fresh)) if cid}
                if names:
                    send({"op": protocol.NAMES, "names": names})
        send(protocol.pack(frame))


    def _send_tables(self, send: Send) -> None:
        """Readings of a program's maps that the client has not had yet, a frame each."""
        take = getattr(self.source, "take_tables", None)
        for name, table in take() if take is not None else ():
            send(protocol.pack(protocol.Frame({"table": name}, table)))


def _lost(source) -> int:
    try:
        return source.lost()
    except Exception:  # noqa: BLE001 - a source that failed has no count to give
        return 0
