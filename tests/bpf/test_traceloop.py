"""traceloop on the real kernel with real podman containers: recorded from birth, kept after exit, overwritten
oldest first with an exact count, surviving its client, ending at its max age, leaving nothing behind."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from support.leftovers import bpf_ids, still_loaded
from support.podman import Container
from support.workloads import marker

import gadgetbook
from gadgetbook.errors import GadgetError

pytestmark = [pytest.mark.root, pytest.mark.containers]
tl = gadgetbook.recorder("traceloop")


@pytest.fixture
def state_root(monkeypatch):
    """Recorders of this test only (their own state directory); any still running afterwards is ended by pid."""
    base = tempfile.mkdtemp(prefix="gbtl-")  # short: a unix socket's path has at most 107 bytes
    monkeypatch.setenv("GADGETBOOK_STATE_DIR", base)
    root = Path(base) / "recorders"
    yield root
    for log in root.glob("*/recorder.log") if root.is_dir() else []:
        print(f"--- {log}\n{log.read_text()}")  # shown when the test failed
    leftover = recorder_pids(root)
    for pid in leftover:
        os.kill(pid, signal.SIGTERM)
    for pid in leftover:
        wait_gone(pid)
    shutil.rmtree(base, ignore_errors=True)
    assert not leftover, f"recorder processes still running after the test: {leftover}"


def recorder_pids(root: Path) -> list[int]:
    pids = []
    for pidfile in root.glob("*/pid") if root.is_dir() else []:
        pid = int(pidfile.read_text())
        if os.path.exists(f"/proc/{pid}"):
            pids.append(pid)
    return pids


def wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    return not os.path.exists(f"/proc/{pid}")


def wait_for(check, timeout: float = 15, step: float = 0.1):
    """Until `check()` gives a DataFrame or something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got is not None and (hasattr(got, "columns") or bool(got)):
            return got
        time.sleep(step)
    pytest.fail("timed out waiting")


def held(pids: list[int]) -> tuple[set[int], set[int], set[int]]:
    """The BPF programs, links and maps the recorder processes hold."""
    ids = (set(), set(), set())
    for pid in pids:
        for mine, theirs in zip(ids, bpf_ids(pid)):
            mine |= theirs
    return ids


def assert_nothing_left(ids: tuple[set[int], set[int], set[int]], pids: list[int]) -> None:
    """The recorder processes ended, and the kernel freed every program, link and map they held."""
    assert all(ids[:2]), "the recorder held no programs or links to check"
    for pid in pids:
        assert wait_gone(pid), f"recorder {pid} still runs"
    wait_for(lambda: still_loaded(ids) == (set(), set(), set()), timeout=10)


@pytest.fixture
def tag():
    return marker("tl")


def test_show_after_the_container_exited_has_its_syscalls_in_order(rootfs, state_root, tag):
    data = Path(rootfs) / "data"
    found = data / f"found-{tag}"
    found.write_text("x")
    started = tl.start(selector=f"gadgetbook-test={tag}")
    assert list(started.state) == ["waiting for containers to start"]
    pids = recorder_pids(state_root)
    assert len(pids) == 1
    kernel = held(pids)
    assert len(kernel[0]) >= 2 and len(kernel[2]) >= 8  # enter and exit programs; its maps

    script = (f"cat /data/found-{tag}; cat /data/missing-{tag}; echo written-{tag} > /tmp/out; exit 3")
    c = Container(rootfs, f"tl-{tag}", {"gadgetbook-test": tag}, script, keep=True)
    try:
        assert c.wait() == 3
        listing = wait_for(lambda: (lambda df: df if (df.state == "exited").any() else None)(tl.list()))
        assert list(listing.container) == [c.name]
        df = tl.show(selector=f"gadgetbook-test={tag}")
    finally:
        c.remove()
    assert set(df.container) == {c.name}
    rows = df.reset_index(drop=True)
    # Caught at birth: the runtime's own first steps in the new namespace come before the script.
    assert rows.comm.iloc[0].startswith("runc")
    opens = rows[rows.syscall.isin(["open", "openat"])]
    ok = opens[(opens.path == f"/data/found-{tag}") & (opens.ret >= 0) & (opens.error == "")].index
    missing = opens[(opens.path == f"/data/missing-{tag}") & (opens.error == "ENOENT")].index
    out = opens[(opens.path == "/tmp/out") & (opens.ret >= 0)].index
    assert len(ok) == 1 and len(missing) == 1 and len(out) == 1
    text = f"written-{tag}\n"
    writes = rows[(rows.syscall == "write") & (rows.ret == len(text)) & (rows.index > out[0])].index
    exits = rows[rows.syscall == "exit_group"]
    assert ok[0] < missing[0] < out[0] < writes[0] < exits.index[-1]
    last = exits.iloc[-1]
    assert last.args == "3" and not last.returned and last.duration != last.duration  # NaT: it never returned
    assert rows.loc[missing[0], "ret"] == -2 and rows.loc[ok[0], "args"].startswith('AT_FDCWD, "/data/found-')
    # In time order, and nothing missing: every position from the first to the last (no overwrite here).
    assert rows.timestamp.is_monotonic_increasing and sorted(rows.seq) == list(range(1, len(rows) + 1))
    facts = df.attrs["containers"]
    assert [(x["container"], x["state"], x["overwritten"]) for x in facts] == [(c.name, "exited", 0)]
    assert facts[0]["recorded"] == len(rows) and df.attrs["overwritten"] == 0
    assert facts[0]["syscalls"]["openat"] >= 3
    # Shown after it exited: handed over and released; the recording goes on for containers to come.
    assert (tl.list().state == "waiting for containers to start").all()

    stopped = tl.stop(selector=f"gadgetbook-test={tag}")
    assert len(stopped) == 0 and stopped.attrs["verb"] == "stop"
    assert_nothing_left(kernel, pids)
    assert not any(state_root.iterdir())


def test_a_small_buffer_overwrites_oldest_first_and_counts_exactly(rootfs, state_root, tag):
    data = Path(rootfs) / "data"
    for i in range(1, 41):
        (data / f"f-{tag}-{i}").write_text(str(i))
    go = data / f"go-{tag}"
    # Static busybox: each cat opens exactly its file; sleep, seq and [ open nothing.
    script = (f"while [ ! -e /data/go-{tag} ]; do sleep 0.05; done; "
              f"for i in $(seq 1 40); do cat /data/f-{tag}-$i; done; sleep 60")
    c = Container(rootfs, f"tl-{tag}", {"gadgetbook-test": tag}, script)
    try:
        tl.start(container=c.name, syscalls="open,openat", entries=16)
        pids = recorder_pids(state_root)
        kernel = held(pids)
        go.write_text("")
        wait_for(lambda: tl.list().recorded.sum() >= 40)
        time.sleep(0.2)
        df = tl.show(container=c.name)
        facts = df.attrs["containers"][0]
        assert (facts["recorded"], facts["kept"], facts["overwritten"]) == (40, 16, 24)
        assert df.attrs["overwritten"] == 24
        assert list(df.path) == [f"/data/f-{tag}-{i}" for i in range(25, 41)]
        assert list(df.seq) == list(range(25, 41))
        assert set(df.syscall) <= {"open", "openat"} and set(df.container) == {c.name}
        tl.stop(container=c.name)
    finally:
        c.remove()
    assert_nothing_left(kernel, pids)


def test_recording_outlives_its_killed_client_and_a_new_process_finds_it(rootfs, state_root, tag):
    script = f"while true; do cat /data/seen-{tag} 2>/dev/null; sleep 0.1; done"
    c = Container(rootfs, f"tl-{tag}", {"gadgetbook-test": tag}, script)
    client = (f"import gadgetbook, time; gadgetbook.recorder('traceloop').start(container={c.name!r}, local=True); "
              "print('started', flush=True); time.sleep(600)")
    try:
        proc = subprocess.Popen([sys.executable, "-c", client], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "started"
        proc.kill()
        proc.wait()
        pids = recorder_pids(state_root)
        assert len(pids) == 1
        kernel = held(pids)
        cli = [sys.executable, "-m", "gadgetbook", "traceloop"]
        listed = subprocess.run([*cli, "list", "--local"], capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert c.name in listed.stdout and "recording" in listed.stdout
        time.sleep(0.5)
        shown = subprocess.run([*cli, "show", "-c", c.name, "-o", "json"], capture_output=True, text=True,
                               timeout=60)
        assert shown.returncode == 0, shown.stderr
        rows = [json.loads(line) for line in shown.stdout.splitlines()]
        assert any(r["path"] == f"/data/seen-{tag}" and r["error"] == "ENOENT" and r["syscall"] == "openat"
                   for r in rows)
        assert "overwritten" in shown.stderr
        stopped = subprocess.run([*cli, "stop", "-c", c.name], capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        assert "stopped" in stopped.stderr
    finally:
        c.remove()
    assert_nothing_left(kernel, pids)


def test_max_age_ends_the_recording_by_itself(rootfs, state_root, tag):
    c = Container(rootfs, f"tl-{tag}", {"gadgetbook-test": tag}, "while true; do sleep 0.2; done")
    try:
        started = tl.start(container=c.name, max_age="2s")
        pids = recorder_pids(state_root)
        kernel = held(pids)
        assert (started.ends - started.since).iloc[0].total_seconds() == pytest.approx(2, abs=0.5)
        assert all(wait_gone(p, timeout=10) for p in pids)
        assert len(tl.list()) == 0
    finally:
        c.remove()
    assert_nothing_left(kernel, pids)


def test_only_the_syscalls_asked_for_are_recorded(rootfs, state_root, tag):
    script = f"while true; do cat /data/nothing-{tag} 2>/dev/null; echo x > /tmp/x; sleep 0.1; done"
    c = Container(rootfs, f"tl-{tag}", {"gadgetbook-test": tag}, script)
    try:
        tl.start(container=c.name, syscalls="openat,write")
        time.sleep(1)
        df = tl.stop(container=c.name)
    finally:
        c.remove()
    assert set(df.syscall) == {"openat", "write"}
    # Counted all the same (a seccomp profile needs every syscall), recorded only as asked.
    assert {"execve", "wait4"} <= set(df.attrs["containers"][0]["syscalls"])


def test_bad_input_gets_one_sentence_and_loads_nothing(rootfs, state_root, tag):
    with pytest.raises(GadgetError, match=r"Unknown syscall names bogus1, bogus2 on SCMP_ARCH_"):
        tl.start(selector=f"gadgetbook-test={tag}", syscalls="openat,bogus1,bogus2")
    with pytest.raises(GadgetError, match=r"--entries must be a power of two"):
        tl.start(selector=f"gadgetbook-test={tag}", entries=1000)
    with pytest.raises(GadgetError, match=r"Name the containers to record"):
        tl.start()
    assert not recorder_pids(state_root)
    with pytest.raises(GadgetError, match=rf"Nothing is being recorded for -l gadgetbook-test={tag}"):
        tl.show(selector=f"gadgetbook-test={tag}")
    with pytest.raises(GadgetError, match=r"Nothing is being recorded for -c nobody"):
        tl.stop(container="nobody")

    c = Container(rootfs, f"tl-{tag}", {"gadgetbook-test": tag}, "while true; do sleep 0.2; done")
    try:
        tl.start(selector=f"gadgetbook-test={tag}")
        with pytest.raises(GadgetError, match=rf"-l gadgetbook-test={tag} is already being recorded by traceloop-"):
            tl.start(selector=f"gadgetbook-test={tag}")
        with pytest.raises(GadgetError, match=rf"Container {c.name} is already being recorded by traceloop-"):
            tl.start(container=c.name)
        assert len(recorder_pids(state_root)) == 1
        # A recorder killed from outside: said once, in one sentence; its kernel objects went with it.
        (pid,) = recorder_pids(state_root)
        kernel = held([pid])
        os.kill(pid, signal.SIGKILL)
        assert_nothing_left(kernel, [pid])
        with pytest.raises(GadgetError, match=r"is gone, killed before it ended; what it recorded went with it"):
            tl.show(selector=f"gadgetbook-test={tag}")
        assert len(tl.list()) == 0
    finally:
        c.remove()
