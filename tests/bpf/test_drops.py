"""Loss accounting: a flooded small ring buffer reports exactly what it could not deliver."""

import subprocess
import sys

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


def test_rows_plus_lost_equal_events_generated(tmp_path):
    path = tmp_path / "flooded"
    path.write_text("x")
    n = 200_000
    child = subprocess.Popen([sys.executable, "-c", FLOOD, str(path), str(n)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        # One page of ring: a dozen 320-byte events, far less than the flood.
        with gadgetbook.start("opensnoop", pid=child.pid, ring_size=4096) as r:
            child.stdin.write("go\n")
            child.stdin.flush()
            opened = int(child.stdout.readline())
            r.stop()
        df = r.result()
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    lost = df.attrs["lost"][df.attrs["nodes"][0]]
    assert opened == n
    assert set(df.path) == {str(path)}, set(df.path) - {str(path)}
    assert lost > 0 and len(df) > 0
    assert len(df) + lost == n
