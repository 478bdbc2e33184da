"""Real workloads with known effects, to compare gadget rows against."""

from __future__ import annotations

import subprocess
import uuid


def marker(prefix: str = "gadgetbook") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def run(*argv: str, **kw) -> subprocess.CompletedProcess:
    """Run a command to completion; returns it with .pid set to the process id it had."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    out, err = p.communicate(timeout=30)
    done = subprocess.CompletedProcess(argv, p.returncode, out, err)
    done.pid = p.pid
    return done


def comm_of_self() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def stop_when(run, seen, timeout: float = 10.0):
    """Let a live run go on until `seen(df)` holds (or `timeout` passes), then stop it; returns the DataFrame."""
    import time

    deadline = time.monotonic() + timeout
    for batch in run.batches(wait=0.05):
        if batch is not None and seen(run.result()):
            break
        if time.monotonic() > deadline:
            break
    run.stop()
    return run.result()
