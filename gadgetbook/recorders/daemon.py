"""A recorder process: holds one recording's BPF objects on this host after the client that started it is gone.

Started by `traceloop start` (see `gadgetbook.recorders.local`): it reads the start request on stdin,
detaches (a new session, re-parented to init), loads the recorder, answers one JSON line on stdout
(the recording's facts, or the error in one sentence), then serves the recorder API on a unix socket in
its state directory until the recording is stopped or reaches its max age. Killed, it takes everything
with it: the kernel frees programs, links and maps with the last file descriptor.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

SOCKET, PID, INFO, LOG = "api.sock", "pid", "recording.json", "recorder.log"
PROCESS_TAG = "gadgetbook.recorders.daemon"  # in the command line: how a client tells its recorders from others


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _Requests:
    """Requests being answered: the process ends only once the last answer is written."""

    def __init__(self) -> None:
        self.active = 0
        self.idle = threading.Condition()

    def __enter__(self) -> None:
        with self.idle:
            self.active += 1

    def __exit__(self, *exc: object) -> None:
        with self.idle:
            self.active -= 1
            self.idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> None:
        with self.idle:
            self.idle.wait_for(lambda: self.active == 0, timeout)


def _handler(recorders, requests: _Requests):
    from gadgetbook import protocol
    from gadgetbook.recorders.api import handle

    prefix = protocol.API + protocol.RECORDERS_PATH

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            with requests:
                self._answer()

        def _answer(self) -> None:
            path = self.path.split("?", 1)[0]
            if path != prefix and not path.startswith(prefix + "/"):
                status, ctype, body = 404, "application/json", b'{"message": "Not a recorder path."}'
            else:
                rid = path[len(prefix):].strip("/") or None
                length = int(self.headers.get("Content-Length") or 0)
                status, ctype, body = handle(recorders, self.command, rid, self.rfile.read(length) if length else None)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args) -> None:  # a detached process has nowhere to log
            pass

    return Handler


def _drop_log(handler) -> None:
    path = getattr(handler, "baseFilename", None)
    if path:
        handler.close()
        try:
            os.unlink(path)
        except OSError:
            pass


def main() -> int:
    request = json.loads(sys.stdin.readline())
    if os.fork():
        os._exit(0)  # the client reaps this one at once; the recorder lives on under init
    os.setsid()
    os.chdir("/")  # pin no directory of the client's
    try:
        os.nice(-10)  # mostly idle, but a birth must be answered while the new container's first process lives
    except OSError:
        pass
    root = Path(request.pop("state_root"))

    def answer(msg: dict) -> None:
        sys.stdout.write(json.dumps(msg, default=str) + "\n")
        sys.stdout.flush()

    done = threading.Event()
    import logging

    handler = logging.FileHandler(root / f".{os.getpid()}.log") if root.is_dir() else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("gadgetbook").addHandler(handler)
    logging.getLogger("gadgetbook").setLevel(logging.INFO)
    try:
        from gadgetbook.errors import GadgetError
        from gadgetbook.recorders.service import Recorders

        recorders = Recorders(node=request.pop("node", None) or socket.gethostname(), on_empty=done.set)
        info = recorders.start(request)
    except GadgetError as exc:
        answer({"error": str(exc)})
        _drop_log(handler)
        return 2
    except Exception as exc:  # noqa: BLE001 - said to the client in one line, not lost in a detached process
        answer({"error": f"The recorder failed to start: {type(exc).__name__}: {exc}."})
        _drop_log(handler)
        return 2
    state = root / info["id"]
    try:
        state.mkdir(parents=True, mode=0o700)
        requests = _Requests()
        server = _Server(str(state / SOCKET), _handler(recorders, requests))
        (state / PID).write_text(str(os.getpid()))
        if isinstance(handler, logging.FileHandler):  # the log moves into the state directory
            os.replace(handler.baseFilename, state / LOG)
        (state / INFO).write_text(json.dumps(info, default=str))
    except OSError as exc:
        recorders.close()
        shutil.rmtree(state, ignore_errors=True)
        answer({"error": f"The recorder cannot serve from {state}: {exc}."})
        _drop_log(handler)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: done.set())
    threading.Thread(target=server.serve_forever, name="gadgetbook-recorder-api", daemon=True).start()
    answer({"ok": True, "recording": info})
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    done.wait()
    time.sleep(0.05)  # a stop's answer is being written: let it finish
    requests.wait_idle()
    server.shutdown()
    server.server_close()
    recorders.close()
    shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
