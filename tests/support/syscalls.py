"""Which bpf(2) calls a command makes, seen with strace: proof that a refused request never loaded anything,
whatever else runs on the machine at the same time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile


def bpf_calls(argv: list[str], timeout: float = 60, **kwargs) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run `argv` under strace (following its threads and children); (its result, every bpf() call it made)."""
    with tempfile.TemporaryDirectory(prefix="gadgetbook-strace-") as tmp:
        log = os.path.join(tmp, "calls")
        done = subprocess.run(["strace", "-f", "-qq", "-e", "trace=bpf", "-o", log, *argv],
                              capture_output=True, text=True, timeout=timeout, **kwargs)
        with open(log) as f:
            calls = [line.strip() for line in f if "bpf(" in line]
    return done, calls


def python_bpf_calls(code: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`bpf_calls` for a Python snippet run with this interpreter and this test run's import path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return bpf_calls([sys.executable, "-c", code], timeout=timeout, env=env)


def loads(calls: list[str]) -> list[str]:
    """The calls that create something in the kernel (a program, a map, a link, BTF)."""
    return [c for c in calls if any(op in c for op in ("BPF_PROG_LOAD", "BPF_MAP_CREATE", "BPF_LINK_CREATE",
                                                         "BPF_BTF_LOAD", "BPF_RAW_TRACEPOINT_OPEN"))]


def refusal(call: str) -> tuple[str, list[str]]:
    """Run a gadgetbook call (Python source) that should be refused: (its GadgetError's sentence, its bpf() calls)."""
    code = ("import json, gadgetbook\n"
            f"try:\n    {call}\nexcept gadgetbook.GadgetError as exc:\n    print(json.dumps(str(exc)))\n"
            "else:\n    print(json.dumps(None))\n")
    done, calls = python_bpf_calls(code)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]) or "", calls
