"""The node API, a jupyter-server extension: node facts, container inventory, gadget runs over a websocket.

Every handler needs the server's token (jupyter-server's own authentication);
the pod listens on loopback, so only a port-forward through the API server
reaches it. A run lives as long as its websocket: when it closes, the gadget
stops and its BPF objects are freed.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import threading
from typing import Any

from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketHandler

import gadgetbook
from gadgetbook import catalog, protocol
from gadgetbook.errors import GadgetError
from gadgetbook.kinds import kind_of


def node_facts() -> dict[str, Any]:
    from gadgetbook.kernel import hooks

    facts: dict[str, Any] = {
        "node": os.environ.get("GADGETBOOK_NODE_NAME") or socket.gethostname(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "btf": os.path.exists(hooks.VMLINUX_BTF),
        "tracefs": hooks.tracefs(),
        "gadgetbook": _version(),
        "gadgets": {},
    }
    for name in catalog.names():
        spec = catalog.get(name)
        groups = [[p for p in g.programs] for g in spec.hooks]
        facts["gadgets"][name] = {"kind": kind_of(spec).name, "hook_groups": groups}
    return facts


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gadgetbook")
    except PackageNotFoundError:
        return "unknown"


class NodeHandler(APIHandler):
    @web.authenticated
    def get(self) -> None:
        self.finish(json.dumps(node_facts()))


class ContainersHandler(APIHandler):
    @web.authenticated
    def get(self) -> None:
        from gadgetbook.targets.local import scan_proc

        self.finish(json.dumps([
            {"id": c.id, "runtime": c.runtime, "mntns_ids": sorted(c.mntns_ids), "pids": c.pids[:20]}
            for c in scan_proc().values()
        ]))


class BtfHandler(APIHandler):
    """This kernel's BTF hash and architecture: clients compile programs of one's own against it."""

    @web.authenticated
    def get(self) -> None:
        from gadgetbook.programs.wire import btf_facts

        try:
            self.finish(json.dumps(btf_facts()))
        except GadgetError as exc:
            raise web.HTTPError(404, str(exc)) from None


class BtfRawHandler(APIHandler):
    """This kernel's BTF itself (a few MB), fetched once per hash by a client."""

    @web.authenticated
    def get(self) -> None:
        from gadgetbook.programs.wire import btf_bytes

        self.set_header("Content-Type", "application/octet-stream")
        self.finish(btf_bytes())


class RunHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """One gadget run per connection, in the messages `gadgetbook.protocol` declares."""

    run = None
    _thread = None

    async def get(self, *args, **kwargs):
        if self.current_user is None:
            self.log.warning("gadgetbook: refused a run without a valid token from %s", self.request.remote_ip)
            raise web.HTTPError(403)
        return await super().get(*args, **kwargs)

    def on_message(self, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
            op = msg.get("op")
            if op == protocol.START and self.run is None:
                self._start(msg)
            elif op == protocol.ADD and self.run is not None:
                self._add(msg.get("container_ids") or [])
            elif op == protocol.STOP and self.run is not None:
                threading.Thread(target=self.run.stop, daemon=True).start()
            else:
                raise GadgetError(f"Unexpected message {op!r} for this run.")
        except (GadgetError, ValueError, TypeError) as exc:
            self._send_json({"op": protocol.ERROR, "message": str(exc)})
            self.close()

    def _start(self, msg: dict) -> None:
        from gadgetbook.node.remote_run import start_on_node

        self.run, self._containers = start_on_node(msg)
        loop = IOLoop.current()
        self._send_json({"op": protocol.STARTED, "node": node_facts()["node"],
                         "columns": [*self.run.columns, protocol.CONTAINER_ID]})
        self._thread = threading.Thread(target=self._stream, args=(loop,), daemon=True)
        self._thread.start()

    def _add(self, container_ids: list[str]) -> None:
        from gadgetbook.node.remote_run import add_containers

        add_containers(self.run, self._containers, container_ids)

    def _stream(self, loop: IOLoop) -> None:
        from gadgetbook.node.remote_run import with_container_ids

        run = self.run
        columns = [*run.columns, protocol.CONTAINER_ID]
        try:
            for batch in run.batches(wait=0.5):
                if batch is not None:
                    data = protocol.encode(with_container_ids(batch, self._containers), columns)
                    loop.add_callback(self._send_bytes, data)
                loop.add_callback(self._send_json, {"op": protocol.STATS, "events": run.counters.events,
                                                    "lost": run.counters.lost_total})
                self._send_tables(run, loop)
            self._send_tables(run, loop)
            if run.counters.errors:  # the client names this node's failure, never a silent gap
                why = "; ".join(run.counters.errors.values())
                loop.add_callback(self._send_json, {"op": protocol.ERROR, "message": why,
                                                    "lost": run.counters.lost_total})
            else:
                loop.add_callback(self._send_json, {"op": protocol.END, "events": run.counters.events,
                                                    "lost": run.counters.lost_total})
        except Exception as exc:  # the client hears why, then the connection closes
            loop.add_callback(self._send_json, {"op": protocol.ERROR, "message": str(exc)})
        loop.add_callback(self.close)

    def _send_tables(self, run, loop: IOLoop) -> None:
        """Readings of a program's maps that the client has not had yet."""
        for source in run.sources:
            take = getattr(source, "take_tables", None)
            for name, table in take() if take is not None else ():
                loop.add_callback(self._send_bytes, protocol.encode(table, list(table), table=name))

    def _send_json(self, msg: dict) -> None:
        if self.ws_connection is not None:
            self.write_message(json.dumps(msg))

    def _send_bytes(self, data: bytes) -> None:
        if self.ws_connection is not None:
            self.write_message(data, binary=True)

    def on_close(self) -> None:
        # The client went away: stop the gadget and free its BPF objects.
        if self.run is not None and self.run.running:
            threading.Thread(target=self.run.stop, daemon=True).start()


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "gadgetbook.node.server"}]


def _load_jupyter_server_extension(serverapp) -> None:
    base = serverapp.web_app.settings["base_url"].rstrip("/")
    serverapp.web_app.add_handlers(".*$", [
        (f"{base}{protocol.API}{protocol.NODE_PATH}", NodeHandler),
        (f"{base}{protocol.API}{protocol.CONTAINERS_PATH}", ContainersHandler),
        (f"{base}{protocol.API}{protocol.RUNS_PATH}", RunHandler),
        (f"{base}{protocol.API}{protocol.BTF_PATH}", BtfHandler),
        (f"{base}{protocol.API}{protocol.BTF_RAW_PATH}", BtfRawHandler),
    ])
    serverapp.log.info("gadgetbook %s node API at %s%s", gadgetbook.__name__, base, protocol.API)
