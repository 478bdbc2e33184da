"""A run saved as a dataset and left alone (nobody reads it live) holds as much memory after many batches as
after a few: its rows go to disk, and only the tail stays, whatever the run's length."""

import subprocess
import sys
import time
import tracemalloc

import pytest

import gadgetbook
from gadgetbook.frames.coded import Coded

pytestmark = pytest.mark.root

# getppid() as many times as each line says, then "done": flood makes PER_CALL events of each call.
CALLER = """
import os, sys
for line in sys.stdin:
    for _ in range(int(line)):
        os.getppid()
    print("done", flush=True)
"""
PER_CALL = 256
CALLS = 200  # a burst: 51,200 events, one batch or two
N = 6  # bursts: 307,200 events, more than the writer buffers before its first write (DatasetWriter's chunk_rows)
TAIL = 1000


def held() -> int:
    """Bytes this process holds in Python objects and numpy arrays (tracemalloc) and in Arrow's pool."""
    import pyarrow as pa

    return tracemalloc.get_traced_memory()[0] + pa.total_allocated_bytes()


def bursts(run, caller: subprocess.Popen, n: int, expected: int) -> int:
    """`n` bursts, each written to disk before the next; returns the events expected so far."""
    for _ in range(n):
        caller.stdin.write(f"{CALLS}\n")
        caller.stdin.flush()
        assert caller.stdout.readline().strip() == "done"
        expected += CALLS * PER_CALL
        deadline = time.monotonic() + 60
        while run.writer.rows + run.counters.lost_total < expected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert run.writer.rows + run.counters.lost_total == expected, (run.writer.rows, run.counters.lost_total)
    time.sleep(0.5)  # the pump hands the last batch over just after writing it
    return expected


def test_memory_held_does_not_grow_with_the_batches_streamed(tmp_path):
    caller = subprocess.Popen([sys.executable, "-c", CALLER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    tracemalloc.start()
    try:
        with gadgetbook.start("flood", pid=caller.pid, per_call=PER_CALL, ring_size="16M", local=True,
                              save=str(tmp_path / "run"), tail=TAIL) as run:
            # Past the first file write: what every run allocates once (pyarrow, the Parquet writer) is in.
            expected = bursts(run, caller, N, 0)
            after_n = held()
            expected = bursts(run, caller, 3 * N, expected)
            after_4n = held()
            run.stop()
        df = run.conclude()
    finally:
        tracemalloc.stop()
        caller.stdin.close()
        caller.wait()
    # In memory, a row takes at least its columns' widths; 3N more events kept would add 18 bursts' worth.
    row_bytes = sum((v.codes if isinstance(v, Coded) else v).dtype.itemsize for v in run.schema.values())
    assert after_4n - after_n < 3 * CALLS * PER_CALL * row_bytes, (after_n, after_4n, row_bytes)
    assert run.writer.rows == 4 * N * CALLS * PER_CALL - run.counters.lost_total  # all of it on disk
    saved = gadgetbook.replay(tmp_path / "run", show=False, columns=["timestamp"])
    assert len(saved) == run.writer.rows
    # The result is the tail: the newest rows (the dataset keeps microseconds).
    assert len(df) == TAIL and df.timestamp.max().floor("us") == saved.timestamp.max()
    assert (df.timestamp.dt.floor("us").to_numpy() == saved.timestamp.to_numpy()[-TAIL:]).all()
