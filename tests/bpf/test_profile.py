"""The profile gadget on this kernel: real sampling of a real frame-pointer program, symbolized."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from support import hotloop
from support.hotloop import user_share
from support.leftovers import bpf_fds

import gadgetbook
from gadgetbook.errors import GadgetError
from gadgetbook.frames.profile import Profile

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def binaries(tmp_path_factory):
    d = tmp_path_factory.mktemp("hotloop")
    return hotloop.build(d), hotloop.build(d, "hotloop-stripped", strip=True)


@pytest.fixture
def busy(binaries):
    procs = []

    def start(which: int = 0, seconds: float = 30.0) -> subprocess.Popen:  # killed at the end of the test
        p = hotloop.start(binaries[which], seconds)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_hot_leaf_under_hot_mid_gets_the_samples(busy):
    p = busy()
    prof = gadgetbook.run("profile", timeout=3, frequency=99)
    assert isinstance(prof, Profile)
    mine = prof.samples[prof.samples.pid == p.pid]
    assert mine["count"].sum() >= 150  # ~99 Hz for 3 s on one CPU
    assert user_share(mine, "hot_mid;hot_leaf") >= 0.8
    assert set(mine.comm) == {"hotloop"}
    folded = prof.folded()
    assert "hotloop;" in folded and ";main;hot_mid;hot_leaf" in folded
    for line in folded.splitlines():
        stack, count = line.rsplit(" ", 1)
        assert int(count) > 0 and stack
    assert prof.attrs["cpus"] == os.cpu_count() and prof.attrs["seconds"] >= 2.9


def test_pid_filter_and_kernel_or_user_only(busy):
    p = busy()
    prof = gadgetbook.run("profile", timeout=1.5, frequency=99, pid=p.pid, user_only=True)
    assert set(prof.samples.pid) == {p.pid}
    assert (prof.samples.kernel_stack == "").all()
    assert user_share(prof.samples, "hot_mid;hot_leaf") >= 0.8
    prof = gadgetbook.run("profile", timeout=1.5, frequency=99, pid=p.pid, kernel_only=True)
    assert (prof.samples.user_stack == "").all() and prof.total > 0


def test_missing_symbols_keep_their_addresses(busy):
    p = busy(which=1)
    prof = gadgetbook.run("profile", timeout=1.5, frequency=99, pid=p.pid, user_only=True)
    df = prof.samples
    assert not df.user_stack.str.contains("hot_leaf").any()
    assert df.user_stack.str.contains(r"\[unknown\]").all()
    assert df.user_addresses.str.match(r"^(0x[0-9a-f]+;)*0x[0-9a-f]+$").all()
    marked = gadgetbook.run("profile", timeout=1.5, frequency=99, pid=p.pid, user_only=True, addresses=True)
    assert marked.samples.user_stack.str.contains(r"\[unknown hotloop-stripped\+0x[0-9a-f]+\]").any()


def test_idle_target_says_no_samples_with_the_seconds():
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        prof = gadgetbook.run("profile", timeout=1, pid=sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert prof.total == 0 and len(prof.samples) == 0
    s = prof.summary()
    assert s.startswith("profile: no samples in 1.0 s of sampling") or s.startswith("profile: no samples in 1.1 s")
    assert s.count(". ") == 0 and s.endswith(".")


@pytest.mark.parametrize("kwargs,message", [
    ({"frequency": 0}, "--frequency must be between 1 and 1000 (got 0)."),
    ({"frequency": 5000}, "--frequency must be between 1 and 1000 (got 5000)."),
    ({"frequency": "fast"}, "--frequency takes a int, not 'fast'."),
    ({"kernel_only": True, "user_only": True}, "--kernel-only and --user-only exclude each other"),
])
def test_bad_input_is_one_sentence(kwargs, message):
    before = bpf_fds()
    with pytest.raises(GadgetError) as err:
        gadgetbook.run("profile", timeout=1, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert bpf_fds() == before  # nothing loaded, or everything freed


def test_save_and_replay_give_a_profile_back(busy, tmp_path):
    p = busy()
    prof = gadgetbook.run("profile", timeout=1.5, frequency=99, pid=p.pid, save=str(tmp_path / "p.parquet"))
    again = gadgetbook.replay(str(tmp_path / "p.parquet"))
    assert isinstance(again, Profile)
    assert again.folded() == prof.folded() and again.total == prof.total


def cli(*args, timeout=60):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "gadgetbook", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_cli_writes_folded_and_speedscope(busy, tmp_path):
    p = busy()
    done = cli("profile", "--pid", str(p.pid), "--timeout", "1.5", "--frequency", "99")
    assert done.returncode == 0, done.stderr
    assert ";hot_mid;hot_leaf " in done.stdout
    assert done.stderr.startswith("profile: ") and " samples in " in done.stderr
    out = tmp_path / "p.speedscope.json"
    done = cli("profile", "--pid", str(p.pid), "--timeout", "1", "--speedscope", str(out),
               "--folded", str(tmp_path / "p.folded"))
    assert done.returncode == 0 and done.stdout == ""
    doc = json.loads(out.read_text())
    names = [f["name"] for f in doc["shared"]["frames"]]
    assert "hot_leaf" in names and doc["profiles"][0]["type"] == "sampled"
    assert sum(doc["profiles"][0]["weights"]) == doc["profiles"][0]["endValue"] > 0
    assert "hot_mid;hot_leaf" in (tmp_path / "p.folded").read_text()
    done = cli("profile", "--frequency", "0", "--timeout", "1")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "--frequency must be between 1 and 1000 (got 0)" in done.stderr


def _kallsyms_names() -> set[str]:
    with open("/proc/kallsyms") as f:
        return {line.split()[2] for line in f}


@pytest.fixture
def syscalls():
    """A process that spends its time in the kernel: one-byte reads of /dev/zero written to /dev/null."""
    p = subprocess.Popen(["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=100000000"],
                         stderr=subprocess.DEVNULL)
    yield p
    p.kill()
    p.wait()


def test_kernel_only_run_has_real_kernel_stacks_named_from_kallsyms(syscalls):
    prof = gadgetbook.run("profile", timeout=1.5, frequency=99, pid=syscalls.pid, kernel_only=True)
    df = prof.samples
    assert set(df.pid) == {syscalls.pid} and (df.user_stack == "").all()
    with_stack = df["count"][df.kernel_stack != ""].sum()
    # dd spends most of its time in read and write: most samples carry a kernel stack.
    assert prof.total >= 20 and with_stack / prof.total >= 0.5
    frames = {f for stack in df.kernel_stack for f in stack.split(";") if f}
    # BPF programs (ours, or another tool's on the same syscalls) are in kallsyms only while loaded.
    named = {f for f in frames if not f.startswith("[unknown") and not re.match(r"bpf_prog_[0-9a-f]{16}_", f)}
    assert named and named <= _kallsyms_names()  # every other name is a kernel symbol
    # The syscall path, outermost first: the entry, then the read or write being done.
    assert df.kernel_stack.str.contains("do_syscall_64").any()
    assert df.kernel_stack.str.contains(r"(?:ksys|vfs)_(?:read|write)").any()


def test_a_process_that_exits_mid_run_keeps_its_symbols(binaries):
    with gadgetbook.start("profile", timeout=4, frequency=99, user_only=True) as r:  # sampling from here
        p = hotloop.start(binaries[0], 1.5)  # gone 1.5 s into the four-second run
        try:
            r.wait()
        finally:
            p.wait(timeout=10)
    prof = r.conclude()
    assert p.returncode == 0 and r.counters.ended - r.counters.started >= 3.9  # it exited well before the end
    mine = prof.samples[prof.samples.pid == p.pid]
    assert mine["count"].sum() >= 10  # of ~150 on an idle machine
    assert user_share(mine, "hot_mid;hot_leaf") >= 0.8, mine[["user_stack", "user_addresses", "count"]].to_string()
