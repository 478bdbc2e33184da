"""opensnoop on the real kernel: exact rows for opens that real processes make, from its one-hook path
(the exit reads the saved registers) and from its two-hook fallback alike."""

import ctypes
import os

import pytest
from support.hook_paths import starter
from support.workloads import marker, run

import gadgetbook

pytestmark = pytest.mark.root

ONE_HOOK = ["tp_sys_exit_openat", "tp_sys_exit_open", "tp_sys_exit_openat2"]
TWO_HOOKS = ["tp_sys_enter_openat", "tp_sys_exit_openat_kept", "tp_sys_enter_open", "tp_sys_exit_open_kept",
             "tp_sys_enter_openat2", "tp_sys_exit_openat2_kept"]


@pytest.fixture(params=["one hook", "two hooks"])
def start(request, monkeypatch):
    """gadgetbook.start for opensnoop through one path or the other (the fallback as on a kernel without
    bpf_task_pt_regs)."""
    if request.param == "one hook":
        return starter("opensnoop", monkeypatch, attached=ONE_HOOK)
    return starter("opensnoop", monkeypatch, attached=TWO_HOOKS, avoid=ONE_HOOK)


def test_successful_and_failed_opens_appear_with_pid_comm_uid(tmp_path, start):
    path = tmp_path / marker()
    path.write_text("x")
    missing = tmp_path / marker("missing")
    r = start()
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


def test_failed_keeps_only_failures(tmp_path, start):
    path = tmp_path / marker()
    path.write_text("x")
    missing = tmp_path / marker("missing")
    r = start(failed=True, pid=os.getpid())
    open(path).close()
    with pytest.raises(FileNotFoundError):
        open(missing)
    r.stop()
    df = r.result()
    assert str(path) not in set(df.path)
    assert list(df[df.path == str(missing)].error) == ["ENOENT"]
    assert (df.fd == -1).all() and (df.pid == os.getpid()).all()


def test_creat_mode_and_flags(tmp_path, start):
    path = tmp_path / marker()
    r = start(pid=os.getpid())
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
    r.stop()
    df = r.result()
    row = df[df.path == str(path)].iloc[0]
    assert row["flags"] == "O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC"  # Python adds O_CLOEXEC
    assert row["mode"] == "0640"


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def test_open_and_openat2_have_their_arguments_too(tmp_path, start):
    """open(2) and openat2(2) hold path, flags and mode in other registers (and a struct) than openat(2)."""
    libc = ctypes.CDLL(None, use_errno=True)
    sys_open, sys_openat2, at_fdcwd = 2, 437, -100  # x86-64
    libc.syscall.restype = ctypes.c_long
    plain, new = tmp_path / marker("open"), tmp_path / marker("openat2")
    r = start(pid=os.getpid())
    fd = libc.syscall(sys_open, str(plain).encode(), os.O_WRONLY | os.O_CREAT, 0o600)
    how = OpenHow(flags=os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode=0o604)
    fd2 = libc.syscall(sys_openat2, at_fdcwd, str(new).encode(), ctypes.byref(how), ctypes.sizeof(how))
    missing = libc.syscall(sys_open, str(tmp_path / "missing").encode(), os.O_RDONLY, 0)
    r.stop()
    os.close(fd)
    os.close(fd2)
    df = r.result().set_index("path")
    assert missing == -1
    assert (df.loc[str(plain)].fd, df.loc[str(plain)]["flags"], df.loc[str(plain)]["mode"]) == (
        fd, "O_WRONLY|O_CREAT", "0600")
    assert (df.loc[str(new)].fd, df.loc[str(new)]["flags"], df.loc[str(new)]["mode"]) == (
        fd2, "O_RDWR|O_CREAT|O_TRUNC", "0604")
    assert df.loc[str(tmp_path / "missing")].error == "ENOENT"


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


def test_result_can_be_read_while_events_arrive(tmp_path):
    """A notebook reads `run.result()` while the run's thread adds batches: each read is whole."""
    import subprocess
    import sys
    import time

    path = tmp_path / marker()
    path.touch()
    loop = f"print('ready', flush=True)\nwhile True: open({str(path)!r}).close()"
    busy = subprocess.Popen([sys.executable, "-c", loop], stdout=subprocess.PIPE, text=True)
    busy.stdout.readline()  # Python's own start-up opens are over: every open traced is of `path`
    r = gadgetbook.start("opensnoop", pid=busy.pid)
    try:
        sizes, end = [], time.monotonic() + 3
        while time.monotonic() < end:
            df = r.result()
            sizes.append(len(df))
            assert (df.path == str(path)).all()
    finally:
        r.stop()
        busy.kill()
        busy.wait()
        busy.stdout.close()
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0], sizes  # rows kept arriving, and none went
