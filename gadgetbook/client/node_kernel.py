"""A cell run in an IPython kernel inside a node's gadgetbook pod (`%%node NODE`): the node's jupyter-server
kernel API (REST to start a kernel, its channels websocket to execute) over the client's port-forward and
token. Outputs show here as they come; listed names come back as values (pickled on the node)."""

from __future__ import annotations

import ast
import atexit
import http.client
import json
import re
import sys
import threading
import time
import uuid
from typing import Any

from gadgetbook import protocol
from gadgetbook.client.node_link import NodeLink
from gadgetbook.errors import GadgetError
from gadgetbook.node.pull import expression, unpack

_KERNELS: dict[tuple, str] = {}  # (cluster, node) -> kernel id, reused by later cells
_LOCK = threading.Lock()
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class NodeKernel:
    """One IPython kernel on a node, started through the node's jupyter-server."""

    def __init__(self, link: NodeLink, kernel_id: str) -> None:
        self.link = link
        self.id = kernel_id

    # -- REST --

    @staticmethod
    def _request(link: NodeLink, method: str, path: str, body: dict | None = None, timeout: float = 60.0):
        conn = http.client.HTTPConnection("localhost", timeout=timeout)
        conn.sock = link.connect()
        conn.sock.settimeout(timeout)
        headers = {"Authorization": protocol.auth_header(link.token), "Content-Type": "application/json"}
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as exc:
            raise GadgetError(f"Cannot reach the node API on {link.node}: {exc}.") from None
        finally:
            conn.close()
        if resp.status in (401, 403):
            raise GadgetError(f"The node API on {link.node} refused the token (HTTP {resp.status}); "
                              "redeploy with `gadgetbook deploy` to renew it.")
        return resp.status, (json.loads(data) if data else None)

    @classmethod
    def start(cls, link: NodeLink) -> NodeKernel:
        status, body = cls._request(link, "POST", "/api/kernels", {"name": "python3"})
        if status not in (200, 201) or not body or "id" not in body:
            raise GadgetError(f"The node pod on {link.node} could not start a Python kernel (HTTP {status}: "
                              f"{(body or {}).get('message', '')}); its image must carry ipykernel.")
        return cls(link, body["id"])

    def alive(self) -> bool:
        status, _ = self._request(self.link, "GET", f"/api/kernels/{self.id}", timeout=15)
        return status == 200

    def interrupt(self) -> None:
        self._request(self.link, "POST", f"/api/kernels/{self.id}/interrupt", {}, timeout=15)

    def shutdown(self) -> None:
        self._request(self.link, "DELETE", f"/api/kernels/{self.id}", timeout=15)

    # -- the channels websocket --

    def execute(self, code: str, expressions: dict[str, str], show, timeout: float | None = None) -> dict:
        """Run `code`, handing each output to `show(msg_type, content)` as it comes; returns the execute
        reply's content (user_expressions among it). Ctrl-C interrupts the node's kernel."""
        import websocket

        session = uuid.uuid4().hex
        try:
            ws = websocket.create_connection(
                f"ws://localhost/api/kernels/{self.id}/channels?session_id={session}", socket=self.link.connect(),
                header=[f"Authorization: {protocol.auth_header(self.link.token)}"], timeout=30)
        except (OSError, websocket.WebSocketException) as exc:
            raise GadgetError(f"Cannot open the kernel's channels on {self.link.node}: {exc}.") from None
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": session, "username": "gadgetbook",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": expressions,
                        "allow_stdin": False, "stop_on_error": True},
        }))
        deadline = time.monotonic() + timeout if timeout else None
        reply, idle = None, False
        ws.settimeout(0.5)
        try:
            while reply is None or not idle:
                if deadline and time.monotonic() > deadline:
                    self.interrupt()
                    deadline = None
                    show("stream", {"name": "stderr", "text": f"(interrupted after {timeout:g} s)\n"})
                try:
                    msg = json.loads(ws.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                except KeyboardInterrupt:
                    self.interrupt()  # the node's cell stops too; its reply still comes
                    continue
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["header"]["msg_type"], msg.get("content", {})
                if kind == "execute_reply":
                    reply = content
                elif kind == "status":
                    idle = content.get("execution_state") == "idle"
                elif kind in ("stream", "display_data", "update_display_data", "execute_result", "error",
                              "clear_output"):
                    show(kind, content)
        except (OSError, websocket.WebSocketException) as exc:
            raise GadgetError(f"The connection to the kernel on {self.link.node} was lost ({exc}).") from None
        finally:
            ws.close()
        return reply


def kernel_for(link: NodeLink, cluster: str) -> NodeKernel:
    """The kernel this notebook uses on that node: the one of earlier cells while it lives, else a new one."""
    key = (cluster, link.node)
    with _LOCK:
        kernel_id = _KERNELS.get(key)
        if kernel_id is not None:
            kernel = NodeKernel(link, kernel_id)
            if kernel.alive():
                return kernel
        kernel = NodeKernel.start(link)
        _KERNELS[key] = kernel.id
        atexit.register(_shutdown_quietly, kernel)
        return kernel


def _shutdown_quietly(kernel: NodeKernel) -> None:
    try:
        kernel.shutdown()
    except Exception:  # noqa: S110 - the pod may be gone; its server culls idle kernels anyway
        pass


def show_output(kind: str, content: dict) -> None:
    """One output of the node's kernel, shown here as the notebook would show it there."""
    if kind == "stream":
        stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
        stream.write(content.get("text", ""))
        stream.flush()
    elif kind in ("display_data", "execute_result", "update_display_data"):
        from IPython.display import publish_display_data

        transient = content.get("transient") or {}
        publish_display_data(content.get("data", {}), content.get("metadata", {}), transient=transient or None,
                             **({"update": True} if kind == "update_display_data" else {}))
    elif kind == "clear_output":
        from IPython.display import clear_output

        clear_output(wait=bool(content.get("wait")))
    elif kind == "error":
        sys.stderr.write("\n".join(content.get("traceback", [])) + "\n")
        sys.stderr.flush()


def run_cell(link: NodeLink, code: str, *, pull: tuple[str, ...] = (), cluster: str = "", show=show_output,
             timeout: float | None = None) -> dict[str, Any]:
    """Run `code` in the node's kernel; returns {name: value} for the names in `pull`."""
    bad = [n for n in pull if not n.isidentifier()]
    if bad:
        raise GadgetError(f"--pull takes variable names separated by commas, not {', '.join(map(repr, bad))}.")
    kernel = kernel_for(link, cluster)
    reply = kernel.execute(code, {name: expression(name) for name in pull}, show, timeout=timeout)
    if reply.get("status") == "error":
        why = f"{reply.get('ename')}: {_ANSI.sub('', reply.get('evalue', ''))}"
        raise GadgetError(f"The cell failed on {link.node}: {why}" + ("; nothing was pulled." if pull else "."))
    if reply.get("status") == "aborted":
        raise GadgetError(f"The cell was aborted on {link.node}; nothing was pulled.")
    values = {}
    for name in pull:
        got = (reply.get("user_expressions") or {}).get(name, {})
        if got.get("status") != "ok":
            ename, evalue = got.get("ename", "Error"), _ANSI.sub("", got.get("evalue", ""))
            if ename == "NameError":
                raise GadgetError(f"--pull {name}: the kernel on {link.node} has no variable {name} "
                                  "(the cell ran; check the name).")
            raise GadgetError(f"--pull {name}: {name} cannot be sent back from {link.node} ({ename}: {evalue}); "
                              "pull values that pickle, such as DataFrames, numbers, strings, lists and dicts.")
        try:
            values[name] = unpack(ast.literal_eval(got["data"]["text/plain"]))
        except Exception as exc:  # a class this side does not have, or a newer pickle
            raise GadgetError(f"--pull {name}: the value from {link.node} cannot be read here ({exc}); "
                              "install the same libraries on both sides, or pull plainer values.") from None
    return values


def on_node(node: str, code: str, *, pull: tuple[str, ...] = (), kubeconfig: str | None = None,
            context: str | None = None, timeout: float | None = None) -> dict[str, Any]:
    """Run Python `code` in a kernel inside the gadgetbook pod of `node`; returns the pulled values."""
    from gadgetbook.kube.api import NAMESPACE, NODE_PORT, bearer_token, connect
    from gadgetbook.kube.node_pods import node_pods
    from gadgetbook.kube.portforward import pod_connector

    kube = connect(kubeconfig, context)
    pods = node_pods(kube)
    if node not in pods:
        raise GadgetError(f"No gadgetbook node pod is ready on the node {node!r}; nodes with one: "
                          f"{', '.join(sorted(pods)) or 'none'} (deploy with `gadgetbook deploy`).")
    connector = pod_connector(kube, NAMESPACE, pods[node], NODE_PORT)
    # Our own token shows the node who asks; a caller who may trace the whole host gets the kernel API's.
    kernel_token = NodeLink(node, connector, bearer_token(kube)).get(protocol.KERNEL_ACCESS_PATH)["token"]
    link = NodeLink(node, connector, kernel_token)
    cluster = f"{kube.client.configuration.host} {context or ''}"
    return run_cell(link, code, pull=pull, cluster=cluster, timeout=timeout)
