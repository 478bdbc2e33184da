"""Recordings on this host without a cluster: one recorder process each, found by its state directory."""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gadgetbook.client.node_link import NodeLink
from gadgetbook.errors import GadgetError
from gadgetbook.recorders.client import RecorderLink
from gadgetbook.recorders.daemon import INFO, PID, PROCESS_TAG, SOCKET

START_SECONDS = 60.0


def state_root() -> Path:
    """Where recorder processes keep their sockets (root only): /run/gadgetbook/recorders by default."""
    return Path(os.environ.get("GADGETBOOK_STATE_DIR", "/run/gadgetbook")) / "recorders"


def spawn(request: dict[str, Any]) -> dict[str, Any]:
    """Start a recorder process for `request`; its facts once it records, or its error in one sentence."""
    root = state_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    proc = subprocess.Popen([sys.executable, "-m", PROCESS_TAG], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        proc.stdin.write((json.dumps({**request, "state_root": str(root.resolve())}) + "\n").encode())
        proc.stdin.close()
        ready, _, _ = select.select([proc.stdout], [], [], START_SECONDS)
        line = proc.stdout.readline() if ready else b""
    finally:
        proc.stdout.close()
        proc.wait()  # the first process exits at once; the recorder runs on, detached
    if not line:
        raise GadgetError(f"The recorder process did not start within {START_SECONDS:g} s.")
    answer = json.loads(line)
    if "error" in answer:
        raise GadgetError(answer["error"])
    return answer["recording"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return PROCESS_TAG.encode() in f.read()
    except OSError:
        return False


def recorder_links() -> tuple[list[RecorderLink], list[str]]:
    """Links to the live recorder processes, and a sentence for each one found gone (its directory is removed)."""
    links, gone = [], []
    root = state_root()
    if not root.is_dir():
        return links, gone
    for state in sorted(root.iterdir()):
        try:
            pid = int((state / PID).read_text())
        except (OSError, ValueError):
            if time.time() - state.stat().st_mtime > 60:  # never finished starting
                shutil.rmtree(state, ignore_errors=True)
            continue
        if not _alive(pid):
            gone.append(f"The recorder of {state.name} (pid {pid}) is gone, killed before it ended; "
                        "what it recorded went with it.")
            shutil.rmtree(state, ignore_errors=True)
            continue
        path = str(state / SOCKET)

        def connect(path: str = path) -> socket.socket:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s

        links.append(LocalRecorderLink(NodeLink(socket.gethostname(), connect, ""), pid))
    return links, gone


class LocalRecorderLink(RecorderLink):
    """A recorder process's link: `stop` returns once the process has ended and the kernel freed its objects."""

    def __init__(self, link: NodeLink, pid: int) -> None:
        super().__init__(link)
        self.pid = pid

    def stop(self, rid: str) -> tuple[dict, dict[str, Any]]:
        got = super().stop(rid)
        deadline = time.monotonic() + 15
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        return got


def recorded_info(state: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state / INFO).read_text())
    except (OSError, ValueError):
        return None
