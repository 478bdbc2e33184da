"""The terminal front end as users run it: list, describe, streaming output, and one-sentence errors."""

import json
import os
import subprocess
import sys

import pytest
from support.leftovers import KernelObjects, bpf_fds
from support.workloads import marker

pytestmark = pytest.mark.root


def cli(*args, user=None, timeout=30):
    cmd = [sys.executable, "-m", "gadgetbook", *args]
    if user:
        cmd = ["setpriv", "--reuid", user, "--regid", user, "--clear-groups", *cmd]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_list_and_describe():
    out = cli("list").stdout
    for name in ("execsnoop", "opensnoop", "bindsnoop"):
        assert name in out
    desc = cli("describe", "opensnoop").stdout
    assert "--failed" in desc and "errno" not in desc.split("Columns:")[0]
    assert "path" in desc


def test_json_output_streams_one_object_per_line(tmp_path):
    m = tmp_path / marker()
    proc = subprocess.Popen([sys.executable, "-m", "gadgetbook", "opensnoop", "-o", "json", "--timeout", "3",
                             "--failed"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not any(kind == "bpf_link" for _, kind in bpf_fds(proc.pid)):
        assert proc.poll() is None
    subprocess.run(["/bin/cat", str(m)], capture_output=True)
    out, err = proc.communicate(timeout=20)
    rows = [json.loads(line) for line in out.splitlines()]
    mine = [r for r in rows if r["path"] == str(m)]
    assert mine and mine[0]["comm"] == "cat" and mine[0]["error"] == "ENOENT" and mine[0]["fd"] == -1
    assert "opensnoop: " in err and " events, " in err and " lost" in err


def test_columns_output_has_a_header_and_rows(tmp_path):
    m = tmp_path / marker()
    proc = subprocess.Popen([sys.executable, "-m", "gadgetbook", "execsnoop", "--timeout", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not any(kind == "bpf_link" for _, kind in bpf_fds(proc.pid)):
        assert proc.poll() is None
    subprocess.run(["/bin/echo", str(m)], capture_output=True)
    out, _ = proc.communicate(timeout=20)
    lines = out.splitlines()
    # The notebook's order: execsnoop's own columns first, then the common ones.
    head = lines[0].split()
    assert head[0] == "PPID" and head.index("ARGS") < head.index("TIMESTAMP") and head[-3:] == ["PID", "COMM", "UID"]
    assert any(str(m) in line and "echo" in line for line in lines[1:])


@pytest.mark.parametrize("args,message", [
    (["nope"], "Unknown gadget or command 'nope'. Known gadgets: bindsnoop, capabilities, dns, execsnoop, opensnoop"),
    (["opensnop"], "Did you mean opensnoop?"),
    (["opensnoop", "--timeout", "soon"], "Cannot read the duration 'soon'"),
    (["opensnoop", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["opensnoop", "-l", "app in api"], "Cannot read the selector"),
    (["opensnoop", "-l", "app=matches-nothing"], "No running container on this host matches -l app=matches-nothing"),
    (["opensnoop", "--ring-size", "1000"], "must be a power of two"),
    (["describe"], "Name one gadget to describe"),
])
def test_bad_input_is_one_sentence_and_loads_nothing(args, message):
    kernel = KernelObjects()
    done = cli(*args)
    assert done.returncode == 2
    assert done.stderr.startswith("gadgetbook: ") and message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert kernel.mark_running() == (set(), set())


def test_unprivileged_user_is_told_to_use_root():
    done = cli("opensnoop", "--timeout", "1", user="65534")
    assert done.returncode == 2
    assert "needs root (or CAP_BPF and CAP_PERFMON)" in done.stderr
    assert "Traceback" not in done.stderr
