"""Nothing stays attached: a terminal run stopped with Ctrl-C (SIGINT) or SIGTERM mid-way frees its BPF objects."""

import os
import signal
import subprocess
import sys
import time

import pytest
from support.leftovers import KernelObjects, bpf_fds

pytestmark = pytest.mark.root


def _cli(*args):
    return subprocess.Popen([sys.executable, "-m", "gadgetbook", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_attached(kernel: KernelObjects, proc, timeout=10):
    """Until the CLI process itself holds BPF links (other tools may load programs meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(kind == "bpf_link" for _, kind in bpf_fds(proc.pid)):
            progs, _ = kernel.mark_running()
            return progs
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    pytest.fail("the gadget never attached")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_detaches_everything_and_prints_the_summary(sig):
    kernel = KernelObjects()
    proc = _cli("opensnoop", "--pid", str(os.getpid()))
    progs = _wait_attached(kernel, proc)
    assert len(progs) >= 2  # the enter and exit programs at least
    open("/dev/null").close()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "opensnoop:" in err and "events," in err and "lost" in err
    assert "/dev/null" in out
    assert kernel.remaining() == (set(), set())


def test_killed_run_leaves_nothing():
    # SIGKILL gives no chance to clean up: the kernel must free what the fds held.
    kernel = KernelObjects()
    proc = _cli("execsnoop")
    _wait_attached(kernel, proc)
    proc.kill()
    proc.communicate(timeout=15)
    deadline = time.monotonic() + 5
    while kernel.remaining() != (set(), set()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kernel.remaining() == (set(), set())
