"""The client's side of the node API: facts and containers over HTTP, gadget runs over a websocket."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable

import numpy as np

from gadgetbook import protocol
from gadgetbook.errors import GadgetError
from gadgetbook.frames.coded import Coded, coded
from gadgetbook.run_handle import concat
from gadgetbook.run_tables import TableReadings, TableSource

# Columns a cluster run adds to gadgets with a remote address: the pod behind that address.
REMOTE_COLUMNS = ("remote_namespace", "remote_pod")
Connect = Callable[[], socket.socket]


class NodeLink:
    """How to reach one node's API: a function that opens a connected socket (a port-forward, or
    plain TCP), and the token."""

    def __init__(self, node: str, connect: Connect, token: str) -> None:
        self.node = node
        self.connect = connect
        self.token = token

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 15.0) -> bytes:
        """One HTTP request to the node API; a GadgetError with the node's own sentence for a refusal."""
        conn = http.client.HTTPConnection("localhost", timeout=timeout)
        conn.sock = self.connect()
        conn.sock.settimeout(timeout)
        headers = {"Authorization": protocol.auth_header(self.token)} if self.token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, protocol.API + path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status in (401, 403):
            raise GadgetError(f"The node API on {self.node} refused the request: {_message(data)}")
        if resp.status == 404 and path.startswith(protocol.BTF_PATH):
            raise GadgetError(f"The node pod on {self.node} does not offer its kernel's BTF (HTTP 404): its kernel "
                              "has none, or its gadgetbook is older than this one; redeploy with `gadgetbook deploy`.")
        if resp.status != 200:
            try:
                message = json.loads(data)["message"]
            except (ValueError, KeyError, TypeError):
                message = f"The node API on {self.node} answered HTTP {resp.status} for {path}."
            raise GadgetError(message)
        return data

    def get(self, path: str, timeout: float = 15.0):
        return json.loads(self.request("GET", path, timeout=timeout))

    def get_bytes(self, path: str, timeout: float = 15.0) -> bytes:
        return self.request("GET", path, timeout=timeout)


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message"))
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:200]


def _refusal(exc) -> str:
    """The node's one sentence from a refused websocket handshake."""
    body = getattr(exc, "resp_body", None) or b""
    return _message(body) if body else f"HTTP {exc.status_code}"


class _PodNames:
    """Names for the client's decoder: mount namespace -> container id (the node says) -> pod (we know)."""

    def __init__(self, pods: dict[str, tuple[str, str, str]]) -> None:
        self.pods = pods  # container id -> (namespace, pod, container)
        self.ids: dict[int, str] = {}  # mount namespace -> container id

    def names(self, mntns_ids: list[int]) -> list[tuple[str, str, str]]:
        return [self.pods.get(self.ids.get(m, ""), ("", "", "")) for m in mntns_ids]


class RemoteSource(TableSource):
    """A gadget running on one node, fed to a Run: frames arrive on a reader thread and are decoded
    here by the gadget's kind (the node ships what its kernel wrote)."""

    # Rows received and not yet taken by the run past which the reader stops reading the connection: the
    # node then waits to send, and this process's memory stays bounded however slow the run's writer.
    max_backlog = 2_000_000

    def __init__(self, link: NodeLink, start: dict, pods: dict[str, tuple[str, str, str]],
                 timeout: float = 30.0, peers=None, spec=None) -> None:
        import websocket

        from gadgetbook import catalog
        from gadgetbook.kinds import kind_of

        self.name = link.node
        # The gadget's spec decodes what the node sends: the catalog's, or a program's that the caller built.
        self.spec = spec if spec is not None else catalog.get(str(start.get("gadget", "")))
        self.kind = kind_of(self.spec)
        self.params = dict(start.get("params") or {})
        self.pods = pods  # container id -> (namespace, pod, container)
        self._names = _PodNames(pods)
        self.peers = peers  # PodAddresses: names the remote end of connections
        self._batches: list[dict] = []
        self._readings = TableReadings()  # a program's maps, read on the node
        self._backlog = 0
        self._lock = threading.Lock()
        self._lost = 0
        self._attrs: dict = {}
        self.warnings: list[str] = []
        self.wire_bytes = 0  # binary frames as received (compressed)
        self._ended = threading.Event()
        self._error: str | None = None
        self.columns: list[str] = []
        try:
            self._ws = websocket.create_connection(
                "ws://localhost" + protocol.API + protocol.RUNS_PATH, socket=link.connect(), timeout=timeout,
                header=[f"{protocol.AUTHORIZATION}: {protocol.auth_header(link.token)}"],
            )
        except websocket.WebSocketBadStatusException as exc:
            raise GadgetError(f"The node API on {link.node} refused the run: {_refusal(exc)}") from None
        except (OSError, websocket.WebSocketException) as exc:
            raise GadgetError(f"Cannot reach the node API on {link.node}: {exc}.") from None
        self._ws.send(json.dumps({**start, "op": protocol.START, "node": link.node}))
        try:
            first = json.loads(self._ws.recv())
        except (OSError, websocket.WebSocketException, ValueError) as exc:
            self._ws.close()
            raise GadgetError(f"The node API on {link.node} closed the run before it started ({exc}).") from None
        if first.get("op") != protocol.STARTED:
            self._ws.close()
            raise GadgetError(str(first.get("message", first)))  # the caller says which node
        self.kind.started(first, link.node)
        self.columns = first["columns"]
        self._ws.settimeout(None)
        self._thread = threading.Thread(target=self._read, name=f"gadgetbook-node-{link.node}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        import websocket

        try:
            while True:
                opcode, data = self._ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_BINARY:
                    self.wire_bytes += len(data)
                    frame = protocol.unpack(data)
                    if frame.header.get("table"):  # a program's map, read on the node
                        self._readings.add(frame.header["table"], self._named_node(frame.columns))
                        continue
                    self._attrs.update(frame.header.get("attrs") or {})
                    batch = self._enrich(self.kind.from_wire(frame, self.params, self._names, self.name))
                    with self._lock:
                        self._batches.append(batch)
                        self._backlog += len(next(iter(batch.values()), ()))
                    while self._backlog >= self.max_backlog and not self._ended.wait(0.01):
                        pass
                elif opcode == websocket.ABNF.OPCODE_TEXT:
                    msg = json.loads(data)
                    op = msg.get("op")
                    self._lost = int(msg.get("lost", self._lost))
                    if op == protocol.NAMES:
                        self._names.ids.update({int(m): cid for m, cid in msg["names"].items()})
                    if msg.get("warning"):
                        self.warnings.append(msg["warning"])
                    if op == protocol.ERROR:
                        self._error = msg.get("message", "error")
                    if op in (protocol.END, protocol.ERROR):
                        break
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    if not self._ended.is_set() and self._error is None:
                        self._error = "the node closed the run without a last word"
                    break
        except (OSError, websocket.WebSocketException) as exc:
            if not self._ended.is_set():
                self._error = f"connection to the node lost ({exc})"
        except Exception as exc:  # a frame this client cannot read: say so instead of going quiet
            self._error = f"cannot read the node's data ({exc})"
        finally:
            self._ended.set()

    def _enrich(self, batch: dict) -> dict:
        if self.peers is not None and "daddr" in batch:
            remote = batch["daddr"]
            owners = self.peers.lookup(remote.categories.tolist())
            for k, key in enumerate(REMOTE_COLUMNS):
                batch[key] = coded(np.arange(len(owners)), lambda j, k=k: owners[j][k]).take(remote.codes)
        return batch

    def attrs(self) -> dict:
        """Facts the node sent about the run (a profile's seconds and samples)."""
        return dict(self._attrs)

    def _named_node(self, table: dict) -> dict:
        """Rows as this client names their node (the node knows itself by its host name)."""
        if "node" in table:
            n = len(table["node"])
            table = {**table, "node": Coded(np.zeros(n, np.int32), np.array([self.name], dtype=object))}
        return table

    def add_containers(self, container_ids: list[str], pods: dict[str, tuple[str, str, str]]) -> None:
        self.pods.update(pods)
        self._ws.send(json.dumps({"op": protocol.ADD, "container_ids": container_ids}))

    # -- Source --

    def poll(self):
        with self._lock:
            batches, self._batches, self._backlog = self._batches, [], 0
        if self._error and not batches:
            raise GadgetError(f"{self.name}: {self._error}")
        if not batches:
            return None
        return concat(batches, list(batches[0]))

    def finish(self, timeout: float = 10.0) -> None:
        if not self._ended.is_set():
            try:
                self._ws.send(json.dumps({"op": protocol.STOP}))
            except Exception:  # noqa: S110 - already gone: the reader says why
                pass
            self._ended.wait(timeout)

    def lost(self) -> int:
        return self._lost


    def close(self) -> None:
        self._ended.set()
        try:
            self._ws.close(timeout=2)
        except Exception:  # noqa: S110 - closing a broken connection
            pass
        deadline = time.monotonic() + 5
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(0.1)

