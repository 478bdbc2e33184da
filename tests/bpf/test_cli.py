"""The terminal front end as users run it: list, describe, streaming output, and one-sentence errors."""

import json
import os
import signal
import subprocess
import sys

import pytest
from support.leftovers import bpf_fds
from support.syscalls import bpf_calls, loads
from support.workloads import marker

pytestmark = pytest.mark.root


def cli(*args, user=None, timeout=30):
    cmd = [sys.executable, "-m", "gadgetbook", *args]
    if user:
        cmd = ["setpriv", "--reuid", user, "--regid", user, "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


NO_PID = int(open("/proc/sys/kernel/pid_max").read())  # process ids stay below pid_max: none has this one


def test_list_and_describe():
    out = cli("list").stdout
    for name in ("execsnoop", "opensnoop", "bindsnoop"):
        assert name in out
    desc = cli("describe", "opensnoop").stdout
    assert "--failed" in desc and "errno" not in desc.split("Columns:")[0]
    assert "path" in desc


def test_json_output_streams_one_object_per_line(tmp_path):
    m = tmp_path / marker()
    proc = subprocess.Popen([sys.executable, "-m", "gadgetbook", "opensnoop", "-o", "json", "--timeout", "60",
                             "--failed"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not any(kind == "bpf_link" for _, kind in bpf_fds(proc.pid)):
            assert proc.poll() is None
        subprocess.run(["/bin/cat", str(m)], capture_output=True)
        # The row comes out while the run goes on: each line is read before the process ends.
        mine = None
        for line in proc.stdout:
            row = json.loads(line)
            assert proc.poll() is None, "the CLI ended before its rows came"
            if row["path"] == str(m):
                mine = row
                break
        assert mine and mine["comm"] == "cat" and mine["error"] == "ENOENT" and mine["fd"] == -1
    finally:
        proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read()  # the same buffered reader: the lines after the one found
        err = proc.stderr.read()
        proc.wait(timeout=20)
    assert proc.returncode == 0, err
    assert all(json.loads(line) for line in rest.splitlines())
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
    (["opensnoop", "--pid", "-7"], "--pid takes a process id, a positive whole number (got -7)"),
    (["opensnoop", "--pid", str(NO_PID)], f"No process {NO_PID} runs on this host"),
    (["opensnoop", "--save", "/proc/nope/x.parquet"], "Cannot save to /proc/nope/x.parquet: /proc does not take"),
    (["advise", "network-policy", "-c", "x", "--save", "/proc/nope/x.parquet"], "Cannot save to /proc/nope/"),
])
def test_bad_input_is_one_sentence_and_loads_nothing(args, message):
    # strace sees every bpf(2) call of the process: none at all means nothing was ever loaded.
    done, calls = bpf_calls([sys.executable, "-m", "gadgetbook", *args], timeout=30, env=_env())
    assert done.returncode == 2
    assert done.stderr.startswith("gadgetbook: ") and message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert calls == []


def test_the_load_check_sees_a_gadget_load():
    """The check above is able to fail: a run that does load shows its programs being loaded."""
    done, calls = bpf_calls([sys.executable, "-m", "gadgetbook", "opensnoop", "--timeout", "0.2",
                             "--pid", str(os.getpid())], env=_env())
    assert done.returncode == 0, done.stderr
    assert any("BPF_PROG_LOAD" in c and "tp_sys_" in c for c in loads(calls))


def test_unprivileged_user_is_told_to_use_root():
    done = cli("opensnoop", "--timeout", "1", user="65534")
    assert done.returncode == 2
    assert "needs root (or CAP_BPF and CAP_PERFMON)" in done.stderr
    assert "Traceback" not in done.stderr
