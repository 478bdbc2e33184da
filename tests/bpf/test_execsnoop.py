"""execsnoop on the real kernel: exact rows for real execs, failures and long argv."""

import os
import subprocess

import pytest
from support.workloads import marker, run

import gadgetbook

pytestmark = pytest.mark.root


def test_exec_row_has_pid_ppid_comm_args_path_error():
    m = marker()
    r = gadgetbook.start("execsnoop")
    done = run("/bin/echo", m, "second arg")
    r.stop()
    df = r.result()
    row = df[df.pid == done.pid].iloc[0]
    assert row.comm == "echo"
    assert row.ppid == os.getpid()
    assert row.path == "/bin/echo"
    assert row.args == f"/bin/echo {m} second arg"
    assert (row.error, row.uid, row.args_truncated) == ("", 0, False)


def test_failed_exec_reports_the_error_name():
    m = "/nonexistent/" + marker()
    r = gadgetbook.start("execsnoop")
    with pytest.raises(FileNotFoundError):
        subprocess.run([m, "x"])
    r.stop()
    df = r.result()
    row = df[df.path == m].iloc[0]
    assert row.error == "ENOENT"
    assert row.args == f"{m} x"
    assert row.ppid == os.getpid()


def test_long_argv_is_flagged_truncated():
    args = [marker() for _ in range(40)]
    r = gadgetbook.start("execsnoop")
    done = run("/bin/true", *args)
    r.stop()
    df = r.result()
    row = df[df.pid == done.pid].iloc[0]
    assert row.args_truncated
    kept = row.args.split()
    assert kept[0] == "/bin/true" and kept[1:] == args[: len(kept) - 1]
    assert len(kept) == 32
