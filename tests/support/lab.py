"""A throwaway JupyterLab server for browser tests, and a runner for the headless-Chromium driver.

Everything the server and its kernels write (config, data, runtime files, IPython and matplotlib
state) lives under one temp dir. Processes are stopped by the ids this module started: the server's
own process group, and each kernel's process group (kernels start in sessions of their own).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
DRIVER = BROWSER_DIR / "driver.js"
CHROMIUM = Path("/usr/bin/chromium")

# Lab settings for a quiet, offline server: no news feed, no update check, no toasts over the page.
_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


@dataclass(frozen=True)
class Lab:
    url: str
    token: str
    port: int
    pid: int
    root_dir: Path
    log_path: Path
    ready_seconds: float

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- process bookkeeping by pid, start time and process group --------------------------------------


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, pgid, starttime) of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[2]), int(fields[19])


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(root: int) -> dict[int, tuple[int, int]]:
    """Every live descendant of root: pid -> (pgid, starttime)."""
    table = {}
    for pid in _all_pids():
        st = _stat(pid)
        if st is not None:
            table[pid] = st
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, tuple[int, int]] = {}
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found[pid] = (table[pid][1], table[pid][2])
        stack.extend(children.get(pid, []))
    return found


def _members(pgids: set[int]) -> list[int]:
    out = []
    for pid in _all_pids():
        st = _stat(pid)
        if st is not None and st[1] in pgids:
            out.append(pid)
    return out


def _alive(pid: int, starttime: int) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == starttime


def stop_tree(proc: subprocess.Popen, grace: float = 10.0) -> list[int]:
    """Stops proc (started with start_new_session=True), its process group and every process group
    its descendants lead: SIGTERM, wait up to grace seconds, then SIGKILL. Returns the pids that
    were still there after SIGKILL and another wait (empty when all is clean)."""
    if proc.poll() is None:
        tree = descendants(proc.pid)
    else:
        tree = {}
    pgids = {proc.pid}
    # Kernels and browsers run in sessions of their own: each is the leader of its own group.
    pgids |= {pid for pid, (pgid, _) in tree.items() if pgid == pid}
    pgids |= {pgid for pgid, _ in tree.values() if pgid in tree or pgid == proc.pid}

    def signal_all(sig: int) -> None:
        for pgid in sorted(pgids):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        for pid, (_, start) in tree.items():
            if _alive(pid, start):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)

    def all_gone(deadline: float) -> bool:
        while True:
            if proc.poll() is not None:
                left = [pid for pid, (_, start) in tree.items() if _alive(pid, start)]
                left += [pid for pid in _members(pgids) if pid not in left]
                if not left:
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    # The server first, alone: on SIGTERM it shuts its kernels down in order.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    if all_gone(time.monotonic() + 0.5):
        return []
    signal_all(signal.SIGTERM)
    if all_gone(time.monotonic() + grace):
        return []
    signal_all(signal.SIGKILL)
    all_gone(time.monotonic() + 5.0)
    return [pid for pid, (_, start) in tree.items() if _alive(pid, start)] + _members(pgids)


# --- JupyterLab ----------------------------------------------------------------------------------


def _lab_env(state: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in list(env):
        if var.startswith(("JUPYTER", "JPY_")):
            del env[var]
    venv_data = Path(sys.prefix) / "share" / "jupyter"
    dirs = {
        "JUPYTER_CONFIG_DIR": state / "config",
        "JUPYTER_DATA_DIR": state / "data",
        "JUPYTER_RUNTIME_DIR": state / "runtime",
        "IPYTHONDIR": state / "ipython",
        "MPLCONFIGDIR": state / "mpl",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    # The venv's share/jupyter holds the lab extensions (ipywidgets' among them) and the kernelspec.
    env["JUPYTER_PATH"] = str(venv_data)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("BROWSER", None)
    settings = dirs["JUPYTER_CONFIG_DIR"] / "lab" / "user-settings"
    for rel, values in _USER_SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return env


def _status(url: str, token: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as resp:
            return resp.status == 200 and "started" in json.loads(resp.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextlib.contextmanager
def jupyter_lab(root_dir: str | os.PathLike, ready_timeout: float = 60.0) -> Iterator[Lab]:
    """Runs JupyterLab on 127.0.0.1 serving root_dir until the block ends; yields a Lab."""
    root = Path(root_dir).resolve()
    state = Path(tempfile.mkdtemp(prefix="gadgetbook-lab-"))
    env = _lab_env(state)
    token = secrets.token_hex(24)
    log_path = state / "lab.log"
    proc = None
    try:
        for _attempt in range(3):
            port = _free_port()
            cmd = [
                sys.executable, "-m", "jupyterlab",
                "--no-browser", "--allow-root",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.root_dir={root}",
                f"--IdentityProvider.token={token}",
                "--ServerApp.password=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.news_url=",
                "--LabApp.extension_manager=readonly",
                "--ServerApp.shutdown_no_activity_timeout=1800",
            ]  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            t0 = time.monotonic()
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    cmd, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            deadline = t0 + ready_timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if _status(url, token):
                    break
                time.sleep(0.1)
            if proc.poll() is None and _status(url, token):
                break
            exited = proc.poll() is not None
            stop_tree(proc, grace=5.0)
            proc = None
            log_text = log_path.read_text(errors="replace")
            if exited and "already in use" in log_text:
                continue  # lost the race for the port: another one
            raise RuntimeError(
                f"JupyterLab not ready within {ready_timeout:.0f} s (exited={exited}); log:\n{log_text[-4000:]}"
            )
        else:
            raise RuntimeError(f"JupyterLab could not bind a free port; log:\n{log_path.read_text()[-4000:]}")
        lab = Lab(url, token, port, proc.pid, root, log_path, time.monotonic() - t0)
        yield lab
    finally:
        try:
            if proc is not None:
                left = stop_tree(proc)
                if left:
                    raise RuntimeError(f"JupyterLab processes survived SIGKILL: {left}")
        finally:
            shutil.rmtree(state, ignore_errors=True)


# --- the browser driver --------------------------------------------------------------------------


class DriverError(AssertionError):
    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message)
        self.result = result or {}


def _stop_recorded(records: list[dict]) -> list[int]:
    """SIGKILLs the processes (and the groups they lead) that a driver run recorded, if still there."""
    left = []
    for r in records:
        pid, pgid, start = int(r["pid"]), int(r["pgid"]), int(r["start"])
        if not _alive(pid, start):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if pgid == pid:
                os.killpg(pgid, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
        left.append(pid)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(_alive(int(r["pid"]), int(r["start"])) for r in records):
        time.sleep(0.05)
    return left


def run_driver(plan: dict, timeout: float = 240.0) -> dict:
    """Runs driver.js with plan (see its header for the steps); returns its JSON result.

    Raises DriverError with the driver's message when a step fails or the whole run overruns. The
    browser is closed by the driver; whatever it leaves (or a driver that had to be killed leaves)
    is stopped here by the pids the driver recorded."""
    env = dict(os.environ)
    env.setdefault("CHROMIUM", str(CHROMIUM))
    with tempfile.TemporaryDirectory(prefix="gadgetbook-driver-") as tmp:
        pid_file = Path(tmp) / "browser-pids.json"
        plan = {**plan, "pid_file": str(pid_file)}
        plan.setdefault("total_timeout_ms", int(timeout * 1000) - 15000)
        proc = subprocess.Popen(
            ["node", str(DRIVER)], cwd=BROWSER_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        overran = False
        try:
            out, err = proc.communicate(json.dumps(plan), timeout=timeout)
        except subprocess.TimeoutExpired:
            overran = True
            # SIGTERM lets the driver close its browser; stop_tree takes what is left.
            stop_tree(proc, grace=10.0)
            out, err = proc.communicate()
        finally:
            if proc.poll() is None:
                stop_tree(proc, grace=5.0)
            survivors = []
            if pid_file.exists():
                with contextlib.suppress(ValueError):
                    survivors = _stop_recorded(json.loads(pid_file.read_text()))
    if overran:
        raise DriverError(f"driver overran {timeout:.0f} s; stderr:\n{err[-4000:]}", {"browser_survivors": survivors})
    try:
        result = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    except ValueError:
        result = {}
    result["browser_survivors"] = survivors
    if proc.returncode != 0 or not result.get("ok"):
        msg = result.get("error") or f"driver exited {proc.returncode}"
        raise DriverError(f"{msg}\nstderr:\n{err[-4000:]}", result)
    # Every page a test drives must run without an uncaught JavaScript error.
    if result.get("page_errors") and not plan.get("allow_page_errors"):
        raise DriverError(f"the page raised JavaScript errors: {result['page_errors']}", result)
    return result


def lab_root(tmp_path: Path, notebook: Path, artifacts: Path) -> Path:
    """A fresh folder for the lab to serve, holding a copy of the notebook; the artifacts folder emptied."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(notebook, root / notebook.name)
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    return root


def open_and_run(notebook: str, until_tag: str, *, wait_last: bool = True,
                 cell_timeout_ms: int = 120_000) -> list[dict]:
    """The first steps of most plans: open the notebook, wait for its kernel, run cells up to a tagged one."""
    return [
        {"op": "open", "name": "open", "path": notebook, "timeout_ms": 60_000},
        {"op": "wait_kernel_idle", "name": "kernel_idle", "timeout_ms": 60_000},
        {"op": "run_cells", "name": "run", "until_tag": until_tag, "wait_last": wait_last,
         "cell_timeout_ms": cell_timeout_ms},
    ]


def run_in_lab(root_dir: str | os.PathLike, plan: dict, timeout: float = 240.0) -> tuple[dict, Lab]:
    """Start JupyterLab on root_dir, drive the browser through `plan`; a failure carries the server's log."""
    with jupyter_lab(root_dir) as lab:
        plan.update(base_url=lab.url, token=lab.token)
        try:
            return run_driver(plan, timeout=timeout), lab
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- JupyterLab log ---\n{lab.log_tail()}") from None
