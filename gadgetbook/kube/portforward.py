"""Sockets to a port inside a pod, through the API server's port-forward (never a NodePort).

The Kubernetes client's own port-forward appends every frame to one growing bytes object and slices it
again after each send: downloads crawl (7-14 MB/s here) while the pod sends fast. This bridge hands
each websocket frame's payload straight to a socket pair and lets the socket's buffer be the only
queue, so a slow reader holds back the pod (TCP backpressure) instead of growing memory.
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
    """Two threads: websocket frames -> socket pair (download), socket pair -> websocket (upload)."""

    def __init__(self, ws, port: int) -> None:
        self.ws = ws
        self.port = port
        ours, self.app = socket.socketpair()
        self.ours = ours
        self.error: str | None = None
        self._running = 2
        self._lock = threading.Lock()
        for target, name in ((self._download, "down"), (self._upload, "up")):
            threading.Thread(target=target, daemon=True, name=f"gadgetbook-port-forward-{name}").start()

    def _download(self) -> None:
        from websocket import ABNF

        started = [False, False]
        try:
            while True:
                opcode, frame = self.ws.recv_data_frame(True)
                if opcode == ABNF.OPCODE_CLOSE:
                    break
                if opcode != ABNF.OPCODE_BINARY or not frame.data:
                    continue
                channel = frame.data[0]
                if channel > _ERROR:
                    break
                data = memoryview(frame.data)[1:]  # after the channel byte
                if not started[channel]:  # each channel's first frame names the port (two bytes)
                    started[channel] = True
                    data = data[2:]
                    if not len(data):
                        continue
                if channel == _ERROR:
                    self.error = bytes(data).decode(errors="replace")
                    break
                self.ours.sendall(data)
        except Exception:  # noqa: S110 - the connection ended either way
            pass
        finally:
            self._close_ours()

    def _upload(self) -> None:
        try:
            while True:
                data = self.ours.recv(1 << 20)
                if not data:
                    break
                self.ws.send_binary(b"\x00" + data)
        except Exception:  # noqa: S110 - the connection ended either way
            pass
        finally:
            try:
                self.ws.shutdown()  # the download thread's recv returns
            except Exception:  # noqa: S110 - closing a connection that is gone
                pass
            self._close_ours()

    def _close_ours(self) -> None:
        """Each thread, as it ends: the other sees the end too; the last one closes the socket."""
        try:
            self.ours.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            self.ours.close()
            try:
                self.ws.close(timeout=1)
            except Exception:  # noqa: S110 - closing a connection that is gone
                pass
