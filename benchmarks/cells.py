"""Cell benchmark: how long a program of one's own takes from the cell to attached, compiled fresh and from the
cache, and what it costs a traced loop, next to bpftrace and bcc doing the same on this machine in this run.

Run as root: `.venv/bin/python benchmarks/cells.py [--headers]`. With --headers, Debian's kernel headers are
linked for the running kernel while bcc is measured (as the tests do) and removed afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.cells import BCC_OPEN_COUNTER, OPEN_COUNTER, with_marker  # noqa: E402

LOOP = "import os, sys\np = sys.argv[1]\nfor _ in range(int(sys.argv[2])):\n    os.close(os.open(p, os.O_RDONLY))\n"


def loop_ns(path: str, n: int) -> float:
    """ns per open+close of `path` in a fresh Python (the traced workload)."""
    t0 = time.perf_counter_ns()
    subprocess.run([sys.executable, "-c", LOOP, path, str(n)], check=True)
    return (time.perf_counter_ns() - t0) / n


def bpf_start(source: str) -> tuple[float, object]:
    from gadgetbook.programs.api import start

    t0 = time.perf_counter()
    run = start(source, local=True)
    return time.perf_counter() - t0, run


def bpftrace_start(path: str) -> tuple[float, subprocess.Popen]:
    prog = ('BEGIN { printf("ready\\n"); } '
            f'tracepoint:syscalls:sys_enter_openat /str(args->filename) == "{path}"/ '
            "{ @[comm] = count(); printf(\"%d %s\\n\", pid, comm); }")
    t0 = time.perf_counter()
    bt = subprocess.Popen(["bpftrace", "-B", "line", "-e", prog], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True)
    for line in bt.stdout:  # BEGIN runs once every probe is attached
        if line.strip() == "ready":
            break
    return time.perf_counter() - t0, bt


def stop_bpftrace(bt: subprocess.Popen, path: str) -> str:
    """SIGINT, then one more event: bpftrace 0.17 can sleep in epoll_wait through the signal until an event
    wakes it. Returns what it printed."""
    bt.send_signal(signal.SIGINT)
    for _ in range(50):
        os.close(os.open(path, os.O_RDONLY))
        try:
            return bt.communicate(timeout=0.2)[0]
        except subprocess.TimeoutExpired:
            continue
    bt.kill()
    return bt.communicate()[0]


def bcc_start(source: str) -> tuple[float, object]:
    from gadgetbook.programs.api import start_bcc

    t0 = time.perf_counter()
    run = start_bcc(source, local=True, warn=lambda _: None)
    return time.perf_counter() - t0, run


@contextlib.contextmanager
def maybe_headers(link: bool):
    if not link:
        yield None
        return
    from support.kernel_headers import debian_headers

    with debian_headers() as version:
        yield version


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headers", action="store_true", help="link Debian's kernel headers while bcc runs")
    parser.add_argument("-n", type=int, default=200_000, help="opens in the traced loop")
    args = parser.parse_args()
    path = f"/tmp/gb-bench-{uuid.uuid4().hex[:8]}"
    Path(path).write_text("x")
    try:
        # Start: fresh compile (a source never seen), then from the cache (the same source again).
        times = []
        for _ in range(3):
            took, run = bpf_start(with_marker(OPEN_COUNTER, f"{path}-{uuid.uuid4().hex[:6]}"))
            run.stop()
            times.append(took)
        print(f"start   %%bpf, compiled fresh:              {statistics.median(times):6.2f} s (median of 3)")
        times = []
        for _ in range(3):
            took, run = bpf_start(with_marker(OPEN_COUNTER, path))
            run.stop()
            times.append(took)
        print(f"start   %%bpf, object from the cache:       {statistics.median(times):6.2f} s (median of 3)")
        if shutil.which("bpftrace"):
            times = []
            for _ in range(3):
                took, bt = bpftrace_start(path)
                stop_bpftrace(bt, path)
                times.append(took)
            print(f"start   bpftrace (the same filter and map): {statistics.median(times):6.2f} s (median of 3)")

        base = loop_ns(path, args.n)
        print(f"loop    untraced open+close:                {base:8.0f} ns/iter")
        took, run = bpf_start(with_marker(OPEN_COUNTER, path))
        traced = loop_ns(path, args.n)
        run.stop()
        result = run.conclude()
        events, lost = len(result.events), sum(result.attrs["lost"].values())
        print(f"loop    %%bpf (map + ring buffer per open):  {traced:8.0f} ns/iter  +{traced - base:.0f}  "
              f"events={events:,} lost={lost:,} map={int(result['counts'].value.sum()):,}")
        if shutil.which("bpftrace"):
            _, bt = bpftrace_start(path)
            traced = loop_ns(path, args.n)
            out = stop_bpftrace(bt, path)
            lines = sum(1 for line in out.splitlines() if line and line[0].isdigit())
            print(f"loop    bpftrace (map + printf per open):   {traced:8.0f} ns/iter  +{traced - base:.0f}  "
                  f"lines={lines:,}")
        with maybe_headers(args.headers):
            try:
                took, run = bcc_start(with_marker(BCC_OPEN_COUNTER, path))
            except Exception as exc:  # no headers, no bcc: said, not hidden
                print(f"bcc     unavailable here: {str(exc).splitlines()[0][:100]}")
            else:
                traced = loop_ns(path, args.n)
                run.stop()
                result = run.conclude()
                print(f"start   %%bcc (compile + attach):            {took:6.2f} s")
                print(f"loop    %%bcc (map + perf buffer per open):  {traced:8.0f} ns/iter  +{traced - base:.0f}  "
                      f"events={len(result.events):,} lost={sum(result.attrs['lost'].values()):,}")
    finally:
        os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
