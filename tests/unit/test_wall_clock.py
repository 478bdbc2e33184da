"""Event times: the offset from the boot clock (what BPF stamps) to the wall clock is the same, to the
microsecond, for gadgets that start side by side in threads, so their rows interleave as the events did."""

import threading
import time

from gadgetbook.frames.decode import boot_to_wall_ns


def test_offset_holds_while_other_threads_want_the_gil():
    stop = threading.Event()

    def spin() -> None:  # pure-Python work: it takes the GIL back at every switch interval
        while not stop.is_set():
            sum(range(1000))

    spinners = [threading.Thread(target=spin) for _ in range(3)]
    for t in spinners:
        t.start()
    try:
        offsets, end = [], time.monotonic() + 1.0
        while time.monotonic() < end:
            offsets.append(boot_to_wall_ns())
    finally:
        stop.set()
        for t in spinners:
            t.join()
    spread = max(offsets) - min(offsets)
    assert len(offsets) > 20 and spread < 1_000_000, f"{len(offsets)} offsets spread over {spread / 1e6:.1f} ms"
