"""The node API, a jupyter-server extension: node facts, container inventory, gadget runs over a websocket.

The pod listens on loopback, so only a port-forward through the API server reaches it. Every request
carries the caller's own Kubernetes bearer token: the node learns who asks and checks their rights
before it loads anything (`gadgetbook.node.access`). A run lives as long as its websocket: when it
closes, the gadget stops and its BPF objects are freed; recordings (traceloop) are the exception: they
live in the server, as long as the pod, until stopped or their max age. Handlers are plain tornado
handlers registered in one table (`HANDLERS`), so more endpoints join with one line each.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import threading
from typing import Any

from tornado import web
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from gadgetbook import catalog, protocol
from gadgetbook.errors import GadgetError
from gadgetbook.kinds import kind_of
from gadgetbook.node.access import Access, Caller, Refused

# Bytes of frames handed to the connection and not yet written out: past this the run's thread waits,
# the node stops draining the kernel, and the kernel counts what no longer fits (memory stays bounded).
IN_FLIGHT_BYTES = 4 << 20


def node_name() -> str:
    return os.environ.get("GADGETBOOK_NODE_NAME") or socket.gethostname()


def node_facts() -> dict[str, Any]:
    from gadgetbook.kernel import hooks
    from gadgetbook.programs.bcc_host import bcc_available

    facts: dict[str, Any] = {
        "node": node_name(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "btf": os.path.exists(hooks.VMLINUX_BTF),
        "tracefs": hooks.tracefs(),
        "bcc": bcc_available(),  # the image built with bcc: %%bcc cells run here
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


class _Authenticated:
    """The caller behind the request's bearer token, or a refusal in one sentence."""

    access: Access

    def initialize(self, access: Access) -> None:
        self.access = access

    def who(self) -> Caller:
        return self.access.caller(protocol.bearer(self.request.headers.get(protocol.AUTHORIZATION)))


class _ApiHandler(_Authenticated, web.RequestHandler):
    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        self.finish(json.dumps({"message": str(exc) if isinstance(exc, GadgetError) else self._reason}))

    def _run(self, fn):
        try:
            caller = self.who()
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(fn(caller)))
        except Refused as exc:
            self.set_status(exc.status)
            self.finish(json.dumps({"message": str(exc)}))
        except GadgetError as exc:
            self.set_status(503)
            self.finish(json.dumps({"message": str(exc)}))


class NodeHandler(_ApiHandler):
    """What the node is (kernel, BTF, gadgets): for any caller the API server knows."""

    def get(self) -> None:
        self._run(lambda caller: node_facts())


class ContainersHandler(_ApiHandler):
    """Every container on the host: as much as a run over the whole host shows, so it asks that right."""

    def get(self) -> None:
        def containers(caller: Caller):
            from gadgetbook.targets.local import scan_proc

            self.access.check_host(caller)
            return [{"id": c.id, "runtime": c.runtime, "mntns_ids": sorted(c.mntns_ids), "pids": c.pids[:20]}
                    for c in scan_proc().values()]

        self._run(containers)


class BtfHandler(_ApiHandler):
    """This kernel's BTF hash and architecture: clients compile programs of one's own against it."""

    def get(self) -> None:
        from gadgetbook.programs.wire import btf_facts

        self._run(lambda caller: btf_facts())


class BtfRawHandler(_Authenticated, web.RequestHandler):
    """This kernel's BTF itself (a few MB), fetched once per hash by a client."""

    def get(self) -> None:
        from gadgetbook.programs.wire import btf_bytes

        try:
            self.who()
        except Refused as exc:
            self.set_status(exc.status)
            self.finish(json.dumps({"message": str(exc)}))
            return
        self.set_header("Content-Type", "application/octet-stream")
        self.finish(btf_bytes())


_kernel_token = ""  # the server's own token, which its kernel API takes (set when the extension loads)


class KernelAccessHandler(_ApiHandler):
    """The server's kernel API token, for a %%node cell: a kernel in this pod is root on the node, so only a
    caller with the right to trace the whole host gets it."""

    def get(self) -> None:
        def token(caller: Caller) -> dict[str, str]:
            self.access.check_host(caller)
            return {"token": _kernel_token}

        self._run(token)


_recorders = None
_recorders_lock = threading.Lock()


def node_recorders():
    """This node's recordings, one set for the life of the server (the pod)."""
    global _recorders
    with _recorders_lock:
        if _recorders is None:
            from gadgetbook.recorders.service import Recorders

            _recorders = Recorders(node=node_name())
        return _recorders


class RecordersHandler(_Authenticated, web.RequestHandler):
    """The recorder API (`gadgetbook.recorders.api`): list, start, show, stop; each recording only for a
    caller who may trace what it records (its pods' namespaces, or the whole host)."""

    def check_xsrf_cookie(self) -> None:
        """No cookies here: every request carries the caller's bearer token, so no XSRF check applies."""

    async def get(self, rid: str | None = None) -> None:
        await self._reply("GET", rid)

    async def post(self, rid: str | None = None) -> None:
        await self._reply("POST", rid)

    async def delete(self, rid: str | None = None) -> None:
        await self._reply("DELETE", rid)

    async def _reply(self, method: str, rid: str | None) -> None:
        from gadgetbook.recorders.api import handle

        try:
            caller = self.who()
        except Refused as exc:
            self.set_status(exc.status)
            self.finish(json.dumps({"message": str(exc)}))
            return

        def allow(target: dict) -> None:
            ids = target.get("container_ids")
            if ids is None:
                self.access.check_host(caller)
            else:
                self.access.check_namespaces(caller, {ns for ns in self.access.namespaces_of(
                    [i.split("://", 1)[-1] for i in ids]).values() if ns})

        # Rights are asked of the API server, and the kernel's buffers loaded or read: off the event loop.
        status, ctype, body = await IOLoop.current().run_in_executor(
            None, handle, node_recorders(), method, rid or None, self.request.body or None, allow)
        self.set_status(status)
        self.set_header("Content-Type", ctype)
        self.finish(body)


class HealthHandler(web.RequestHandler):
    """The kubelet's readiness check: an HTTP GET it makes itself, so no process starts in the pod."""

    def get(self) -> None:
        self.finish("ok")


class RunHandler(_Authenticated, WebSocketHandler):
    """One gadget run per connection, in the messages `gadgetbook.protocol` declares."""

    run = None
    caller: Caller | None = None

    async def get(self, *args, **kwargs):
        try:
            self.caller = self.who()
        except Refused as exc:
            self.set_status(exc.status)
            self.finish(json.dumps({"message": str(exc)}))
            return None
        return await super().get(*args, **kwargs)

    def open(self, *args, **kwargs) -> None:
        self._loop = IOLoop.current()
        self._in_flight = 0
        self._room = threading.Condition()
        self._starting = False

    def on_message(self, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
            op = msg.get("op")
            if op == protocol.START and self.run is None and not self._starting:
                self._starting = True
                # Rights are asked of the API server and BPF is loaded off the event loop.
                threading.Thread(target=self._start, args=(msg,), daemon=True, name="gadgetbook-start").start()
            elif op == protocol.ADD and self.run is not None:
                threading.Thread(target=self._add, args=(msg.get("container_ids") or [],), daemon=True).start()
            elif op == protocol.STOP and self.run is not None:
                self.run.stop()
            else:
                raise GadgetError(f"Unexpected message {op!r} for this run.")
        except (GadgetError, ValueError, TypeError) as exc:
            self._send({"op": protocol.ERROR, "message": str(exc)})
            self._loop.add_callback(self.close)

    def _start(self, msg: dict) -> None:
        from gadgetbook.node.remote_run import NodeRun

        try:
            run = NodeRun(msg, self.caller, self.access, node_name())
        except Exception as exc:  # refused, bad params, a gadget that cannot load: one sentence to the client
            self._send({"op": protocol.ERROR, "message": str(exc) or type(exc).__name__})
            self._loop.add_callback(self.close)
            return
        self.run = run
        self._send({**run.kind.reply(), "op": protocol.STARTED, "node": node_name(), "columns": run.kind.columns()})
        if self.ws_connection is None:  # the client left while the gadget loaded
            run.stop()
        run.stream(self._send)
        self._loop.add_callback(self.close)

    def _add(self, container_ids: list[str]) -> None:
        try:
            self.run.add(container_ids)
        except GadgetError as exc:  # a pod the caller may not trace: the run goes on without it
            self._send({"op": protocol.STATS, "warning": str(exc)})

    # -- sending from the run's thread, with a bound on what waits in the connection --

    def _send(self, msg) -> None:
        binary = isinstance(msg, bytes)
        data = msg if binary else json.dumps(msg)
        with self._room:
            while binary and self._in_flight > IN_FLIGHT_BYTES and self.ws_connection is not None:
                self._room.wait(0.5)
            self._in_flight += len(data)
        self._loop.add_callback(self._write, data, binary)

    def _write(self, data, binary: bool) -> None:
        def done(_=None) -> None:
            with self._room:
                self._in_flight -= len(data)
                self._room.notify_all()

        if self.ws_connection is None:
            done()
            return
        try:
            self.write_message(data, binary=binary).add_done_callback(done)
        except WebSocketClosedError:
            done()

    def on_close(self) -> None:
        # The client went away: stop the gadget and free its BPF objects.
        if self.run is not None:
            self.run.stop()
        with self._room:
            self._room.notify_all()


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "gadgetbook.node.server"}]


# path under the API -> handler; each gets the access policy.
HANDLERS = {
    protocol.NODE_PATH: NodeHandler,
    protocol.CONTAINERS_PATH: ContainersHandler,
    protocol.RUNS_PATH: RunHandler,
    protocol.BTF_PATH: BtfHandler,
    protocol.BTF_RAW_PATH: BtfRawHandler,
    protocol.KERNEL_ACCESS_PATH: KernelAccessHandler,
    protocol.RECORDERS_PATH: RecordersHandler,
    protocol.RECORDERS_PATH + "/([^/]+)": RecordersHandler,
}


def _load_jupyter_server_extension(serverapp) -> None:
    from gadgetbook.node.access import from_environment

    global _kernel_token
    _kernel_token = serverapp.identity_provider.token
    access = from_environment(node_name(), serverapp.identity_provider.token)
    base = serverapp.web_app.settings["base_url"].rstrip("/")
    serverapp.web_app.add_handlers(".*$", [
        (f"{base}{protocol.API}{path}", handler, {"access": access}) for path, handler in HANDLERS.items()])
    health_port = os.environ.get("GADGETBOOK_HEALTH_PORT")
    if health_port:
        # On the pod's own address (the kubelet's probe comes from outside the pod's loopback); it
        # answers this one path and nothing else.
        web.Application([(protocol.HEALTH_PATH, HealthHandler)], log_function=lambda handler: None).listen(
            int(health_port))
    serverapp.log.info("gadgetbook node API at %s%s (%s)", base, protocol.API, type(access).__name__)
