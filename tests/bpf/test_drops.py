"""Loss accounting: a flooded small ring buffer reports exactly what it could not deliver, run after run,
while a second process loads the machine and runs through the same programs."""

import os
import subprocess
import sys
import time

import pytest

import gadgetbook

pytestmark = pytest.mark.root

FLOOD = """
import os, sys
path, n = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)      # started up: no more opens of its own
sys.stdin.readline()            # wait until the gadget is attached
for _ in range(n):
    os.close(os.open(path, os.O_RDONLY))
print(n, flush=True)            # the count, independent of BPF
sys.stdin.readline()
"""

# Busy on the other CPU the whole time, opening files itself: the gadget's programs run for it too (and
# filter it out), and the drain thread competes with it for a CPU.
LOAD = """
import os, sys
while True:
    os.close(os.open(sys.argv[1], os.O_RDONLY))
"""

OPENS = 1_000_000
RUNS = 3


@pytest.fixture
def load(tmp_path):
    other = tmp_path / "other"
    other.write_text("y")
    proc = subprocess.Popen([sys.executable, "-c", LOAD, str(other)])
    yield proc
    proc.kill()
    proc.wait()


def flood(path, n: int):
    """Start a process that opens `path` n times once told to; returns it, started up and waiting."""
    child = subprocess.Popen([sys.executable, "-c", FLOOD, str(path), str(n)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    return child


@pytest.mark.parametrize("run", range(RUNS))
def test_rows_plus_lost_equal_events_generated(tmp_path, load, run):
    path = tmp_path / "flooded"
    path.write_text("x")
    child = flood(path, OPENS)
    try:
        # 64 KiB of ring: about 200 events of 328 bytes, far less than the flood.
        with gadgetbook.start("opensnoop", pid=child.pid, ring_size="64k") as r:
            child.stdin.write("go\n")
            child.stdin.flush()
            opened = int(child.stdout.readline())
            r.stop()
        df = r.result()
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    assert load.poll() is None  # the load ran throughout
    assert df.attrs["errors"] == {}  # the drain never failed
    lost = df.attrs["lost"][df.attrs["nodes"][0]]
    assert opened == OPENS
    assert set(df.path) == {str(path)}, set(df.path) - {str(path)}
    assert set(df.pid) == {child.pid}
    assert lost > 0 and len(df) > 0
    assert len(df) + lost == OPENS, f"{OPENS - len(df) - lost} events neither delivered nor counted"
    assert df.attrs["events"] == len(df)


def test_stopping_mid_flood_detaches_before_the_last_read(tmp_path):
    """The run stops while its target still opens files: once stopped, the programs are off their hooks,
    so the counts it reports are final (no event lands in the ring after the last read)."""
    from support.leftovers import bpf_fds

    path = tmp_path / "flooded"
    path.write_text("x")
    child = flood(path, 10**9)
    try:
        r = gadgetbook.start("opensnoop", pid=child.pid, ring_size="64k")
        child.stdin.write("go\n")
        child.stdin.flush()
        while r.counters.events == 0:
            next(r.batches())
        src = r.sources[0]
        src.finish()  # what the run does first when it stops
        assert not any(kind == "bpf_link" for _, kind in bpf_fds(os.getpid()))
        lost, pending = src.lost(), src._ring.pending()
        assert pending == 0
        time.sleep(0.1)  # the child goes on opening meanwhile
        assert (src.lost(), src._ring.pending()) == (lost, 0)  # nothing more comes
        r.stop()
        df = r.result()
    finally:
        child.kill()
        child.wait()
    assert df.attrs["errors"] == {} and len(df) > 0
    assert df.attrs["lost"][df.attrs["nodes"][0]] == lost
