"""Sockets to a port inside a pod, through the API server's port-forward (never a NodePort).

The Kubernetes client's own port-forward appends every frame to one growing bytes object and slices it
again after each send: downloads crawl (7-14 MB/s here) while the pod sends fast. This bridge queues
each websocket frame's payload as it came and hands it to a socket pair; past a bound it stops reading
the websocket, so a slow reader holds back the pod (TCP backpressure) instead of growing memory.
"""

from __future__ import annotations

import socket
import threading

from gadgetbook.errors import GadgetError
from gadgetbook.kube.api import Kube

_DATA, _ERROR = 0, 1  # channels of the first (only) port


def pod_connector(kube: Kube, namespace: str, pod: str, port: int):
    """A function that opens a new connection to `port` in the pod each time it is called."""

    def connect() -> socket.socket:
        return open_port_forward(kube, namespace, pod, port)

    return connect


def open_port_forward(kube: Kube, namespace: str, pod: str, port: int) -> socket.socket:
    """One port-forward: the returned socket talks to `port` inside the pod."""
    from kubernetes.stream.ws_client import V4_CHANNEL_PROTOCOL, create_websocket, get_websocket_url

    cfg = kube.client.configuration
    if cfg.refresh_api_key_hook is not None:
        cfg.refresh_api_key_hook(cfg)
    headers = {"sec-websocket-protocol": V4_CHANNEL_PROTOCOL}
    auth = cfg.auth_settings().get("BearerToken")
    if auth:
        headers["authorization"] = auth["value"]
    url = get_websocket_url(f"{cfg.host}/api/v1/namespaces/{namespace}/pods/{pod}/portforward?ports={port}")
    try:
        ws = create_websocket(cfg, url, headers)
    except Exception as exc:  # noqa: BLE001 - websocket, TLS and socket errors alike become one sentence
        status = getattr(exc, "status_code", None)
        if status == 403:
            raise GadgetError(f"Permission denied while port-forwarding to {namespace}/{pod}; ask for the "
                              "gadgetbook-user role (see images/k8s/RBAC.md).") from None
        raise GadgetError(f"Cannot port-forward to {namespace}/{pod}:{port} ({exc}).") from None
    return _Bridge(ws, port).app


class _Bridge:
    """One thread moves bytes both ways: websocket frames -> socket pair (download), socket pair ->
    websocket (upload). One thread, because an SSL connection must not be read and written by two
    threads at once; a queue of frame payloads (never one growing bytes object) holds what the
    socket pair has not taken yet, and while it is full the websocket is not read (backpressure)."""

    HIGH_WATER = 8 << 20

    def __init__(self, ws, port: int) -> None:
        self.ws = ws
        self.port = port
        ours, self.app = socket.socketpair()
        self.ours = ours
        self.error: str | None = None
        threading.Thread(target=self._pump, daemon=True, name="gadgetbook-port-forward").start()

    def _pump(self) -> None:
        import collections
        import select

        pending: collections.deque[memoryview] = collections.deque()
        queued = 0
        started = [False, False]
        self.ours.setblocking(False)
        try:
            while True:
                readers = [self.ours] + ([self.ws.sock] if queued < self.HIGH_WATER else [])
                writers = [self.ours] if pending else []
                readable, writable, _ = select.select(readers, writers, [])
                if self.ours in writable:
                    while pending:
                        try:
                            sent = self.ours.send(pending[0])
                        except BlockingIOError:
                            break
                        queued -= sent
                        if sent == len(pending[0]):
                            pending.popleft()
                        else:
                            pending[0] = pending[0][sent:]
                if self.ours in readable:
                    try:
                        data = self.ours.recv(1 << 20)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        return  # the application closed its end
                    if data:
                        self.ws.send_binary(b"\x00" + data)
                if self.ws.sock in readable:
                    # Every frame TLS has already decrypted, not only the first: select would not wake for them.
                    while True:
                        payload = self._frame(started)
                        if payload is None:
                            return
                        if len(payload):
                            pending.append(payload)
                            queued += len(payload)
                        more = getattr(self.ws.sock, "pending", None)
                        if not (more and more()):
                            break
        except Exception:  # noqa: S110 - the connection ended either way
            pass
        finally:
            self._close()

    def _frame(self, started: list[bool]) -> memoryview | None:
        """The data of one websocket frame from the API server; None when the connection ends."""
        from websocket import ABNF

        opcode, frame = self.ws.recv_data_frame(True)
        if opcode == ABNF.OPCODE_CLOSE:
            return None
        if opcode != ABNF.OPCODE_BINARY or not frame.data:
            return memoryview(b"")
        channel = frame.data[0]
        if channel > _ERROR:
            return None
        data = memoryview(frame.data)[1:]  # after the channel byte
        if not started[channel]:  # each channel's first frame names the port (two bytes)
            started[channel] = True
            data = data[2:]
        if channel == _ERROR:
            if len(data):
                self.error = bytes(data).decode(errors="replace")
                return None
            return memoryview(b"")
        return data

    def _close(self) -> None:
        """The application sees the end; the websocket and our end of the pair are closed."""
        try:
            self.ours.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ours.close()
        try:
            self.ws.close(timeout=1)
        except Exception:  # noqa: S110 - closing a connection that is gone
            pass
