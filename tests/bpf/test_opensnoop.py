"""opensnoop on the real kernel: exact rows for opens that real processes make."""

import os

import pytest
from support.workloads import marker, run

import gadgetbook

pytestmark = pytest.mark.root


def test_successful_and_failed_opens_appear_with_pid_comm_uid(tmp_path):
    path = tmp_path / marker()
    path.write_text("x")
    missing = tmp_path / marker("missing")
    r = gadgetbook.start("opensnoop")
    ok = run("/bin/cat", str(path))
    bad = run("/bin/cat", str(missing))
    nobody = run("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "/bin/cat", str(path))
    r.stop()
    df = r.result()

    row = df[df.path == str(path)]
    row = row[row.pid == ok.pid].iloc[0]
    assert (row.comm, row.uid, row.error, row.tid) == ("cat", 0, "", ok.pid)
    assert row.fd >= 3
    assert row["flags"].startswith("O_RDONLY")
    assert row.container == ""

    row = df[(df.path == str(missing)) & (df.pid == bad.pid)].iloc[0]
    assert (row.comm, row.fd, row.error) == ("cat", -1, "ENOENT")

    # tmp_path is 0700 root: the unprivileged cat is refused.
    row = df[(df.path == str(path)) & (df.pid == nobody.pid)].iloc[0]
    assert (row.uid, row.gid, row.fd, row.error) == (65534, 65534, -1, "EACCES")


def test_failed_keeps_only_failures(tmp_path):
    path = tmp_path / marker()
    path.write_text("x")
    missing = tmp_path / marker("missing")
    r = gadgetbook.start("opensnoop", failed=True, pid=os.getpid())
    open(path).close()
    with pytest.raises(FileNotFoundError):
        open(missing)
    r.stop()
    df = r.result()
    assert str(path) not in set(df.path)
    assert list(df[df.path == str(missing)].error) == ["ENOENT"]
    assert (df.fd == -1).all() and (df.pid == os.getpid()).all()


def test_creat_mode_and_flags(tmp_path):
    path = tmp_path / marker()
    r = gadgetbook.start("opensnoop", pid=os.getpid())
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
    r.stop()
    df = r.result()
    row = df[df.path == str(path)].iloc[0]
    assert row["flags"] == "O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC"  # Python adds O_CLOEXEC
    assert row["mode"] == "0640"


def test_dtypes_and_common_columns_first():
    r = gadgetbook.start("opensnoop", pid=os.getpid())
    r.stop()
    df = r.result()  # empty or not, the schema is the same
    assert list(df.columns[:10]) == ["timestamp", "node", "namespace", "pod", "container", "pid", "tid", "comm",
                                     "uid", "gid"]
    assert str(df.timestamp.dtype) == "datetime64[ns]"
    assert df.comm.dtype == "category" and df.error.dtype == "category"
    assert df.attrs["gadget"] == "opensnoop" and df.attrs["lost"] is not None


def test_timestamps_are_wall_clock(tmp_path):
    import time

    path = tmp_path / marker()
    before = time.time_ns()
    r = gadgetbook.start("opensnoop", pid=os.getpid())
    open(path, "w").close()
    r.stop()
    after = time.time_ns()
    df = r.result()
    ts = df[df.path == str(path)].timestamp.iloc[0].value
    assert before <= ts <= after
