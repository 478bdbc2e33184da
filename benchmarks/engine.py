"""Engine benchmark: ring-buffer drain into a DataFrame, cost to a traced loop, time to attach, peak RSS.

Run as root: `.venv/bin/python benchmarks/engine.py`. Compares with bpftrace (and bcc when it can
compile here) on the same machine in the same run, and prints one line per measurement.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = Path(tempfile.mkdtemp(prefix="gadgetbook-bench-"))


def build() -> tuple[str, str]:
    loop = BUILD / "loop"
    subprocess.run(["gcc", "-O2", "-o", loop, HERE / "loop.c"], check=True)
    obj = BUILD / "flood.bpf.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I", ROOT / "bpf/include",
                    "-I", ROOT / "bpf/.build", "-c", HERE / "bpf/flood.bpf.c", "-o", obj], check=True)
    (BUILD / "flood.toml").write_text('name = "flood"\ndescription = "benchmark"\n')
    return str(loop), str(obj)


def workload(loop: str, mode: str, n: int, path: str = "/dev/null") -> subprocess.Popen:
    return subprocess.Popen([loop, mode, str(n), path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def go(w: subprocess.Popen) -> float:
    w.stdin.write("go\n")
    w.stdin.flush()
    out = w.stdout.read()
    w.wait()
    return float(out)


# -- 1. drain rate --------------------------------------------------------

def drain_rate(loop: str, n: int) -> None:
    from gadgetbook.catalog.spec import load_spec
    from gadgetbook.frames.dataframe import to_dataframe
    from gadgetbook.frames.decode import Decoder
    from gadgetbook.kernel.gadget import EVENTS_MAP, load_gadget, lost_events
    from gadgetbook.kernel.ring import RingReader
    from gadgetbook.targets.local import LocalContainers

    spec = load_spec(BUILD / "flood.toml")
    w = workload(loop, "getppid", n)
    ring = 1 << 28  # holds the whole backlog: the producer runs first, then the drain alone
    with load_gadget(str(spec.object_path), spec.hooks, {}, pid=w.pid, ring_bytes=ring) as obj:
        reader = RingReader(obj.map_fd(EVENTS_MAP), ring, spec.event_dtype)
        go(w)
        decoder = Decoder(spec, "bench", LocalContainers())
        t0 = time.perf_counter()
        raw = reader.read()
        t1 = time.perf_counter()
        cols = decoder.decode(raw)
        t2 = time.perf_counter()
        df = to_dataframe([cols], decoder.names(), {}, decoder.categorical)
        t3 = time.perf_counter()
        lost = lost_events(obj)
        reader.close()
    got = len(df)
    print(f"drain   64-byte events: {got:,} (+{lost} lost) | ring->numpy {got / (t1 - t0) / 1e6:5.1f} M ev/s | "
          f"decode {got / (t2 - t1) / 1e6:5.1f} M ev/s | DataFrame {got / (t3 - t2) / 1e6:5.1f} M ev/s | "
          f"end to end {got / (t3 - t0) / 1e6:5.1f} M ev/s")


# -- 2. cost to a traced open+close loop ------------------------------------

def overhead(loop: str, n: int, target: str) -> None:
    import gadgetbook

    w = workload(loop, "open", n, target)
    base = go(w)
    print(f"loop    open+close untraced:                  {base:8.0f} ns/iter")

    w = workload(loop, "open", n, target)
    with gadgetbook.start("opensnoop", pid=w.pid) as r:
        ns = go(w)
        r.stop()
    df = r.result()
    lost = sum(df.attrs["lost"].values())
    print(f"loop    gadgetbook opensnoop (enter+exit):    {ns:8.0f} ns/iter  rows={len(df):,} lost={lost}")

    if shutil.which("bpftrace"):
        w = workload(loop, "open", n, target)
        prog = (f"tracepoint:syscalls:sys_enter_openat /pid == {w.pid}/ {{ @fn[tid] = args->filename; }} "
                f"tracepoint:syscalls:sys_exit_openat /pid == {w.pid}/ "
                '{ printf("%d %s %d\\n", pid, str(@fn[tid]), args->ret); delete(@fn[tid]); }')
        bt = subprocess.Popen(["bpftrace", "-e", prog], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        bt.stdout.readline()  # "Attaching 2 probes..."
        ns = go(w)
        bt.terminate()
        lines = sum(1 for _ in bt.stdout)
        bt.wait()
        print(f"loop    bpftrace equivalent (printf):         {ns:8.0f} ns/iter  lines={lines:,}")
    bcc_overhead(loop, n, target)


BCC_PROGRAM = r"""
#include <uapi/linux/ptrace.h>
struct data_t { u32 pid; int ret; char comm[16]; };
BPF_RINGBUF_OUTPUT(events, 1 << 12);
TRACEPOINT_PROBE(syscalls, sys_exit_openat) {
    if ((bpf_get_current_pid_tgid() >> 32) != PID) return 0;
    struct data_t d = {};
    d.pid = bpf_get_current_pid_tgid() >> 32; d.ret = args->ret;
    bpf_get_current_comm(&d.comm, sizeof(d.comm));
    events.ringbuf_output(&d, sizeof(d), 0);
    return 0;
}
"""


def bcc_overhead(loop: str, n: int, target: str) -> None:
    """bcc with a Python callback per event; needs kernel headers, which many hosts (this one) lack."""
    code = (
        "import sys\nfrom bcc import BPF\n"
        f"b = BPF(text={BCC_PROGRAM!r}.replace('PID', sys.argv[1]))\n"
        "n = [0]\n"
        "def cb(ctx, data, size): n[0] += 1\n"
        "b['events'].open_ring_buffer(cb)\nprint('ready', flush=True)\n"
        "import signal\nsignal.signal(signal.SIGTERM, lambda *a: (b.ring_buffer_consume(), print(n[0]), sys.exit(0)))\n"
        "while True: b.ring_buffer_poll(100)\n"
    )
    w = workload(loop, "open", n, target)
    env = {**os.environ, "PYTHONPATH": "/usr/lib/python3/dist-packages"}
    bcc = subprocess.Popen(["/usr/bin/python3", "-c", code, str(w.pid)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env)
    if bcc.stdout.readline().strip() != "ready":
        err = bcc.stderr.read().strip().splitlines()
        bcc.wait()
        w.kill()
        w.wait()
        print(f"loop    bcc ring buffer + Python callback:   unavailable here ({(err or ['?'])[-1][:90]})")
        return
    ns = go(w)
    bcc.terminate()
    count = bcc.stdout.read().strip()
    bcc.wait()
    print(f"loop    bcc ring buffer + Python callback:   {ns:8.0f} ns/iter  events={count}")


# -- 3. time to attach, 4. peak RSS ------------------------------------------

def _links(pid: int) -> int:
    count = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            count += target in ("anon_inode:bpf_link", "anon_inode:[perf_event]")
    except OSError:
        pass
    return count


def _peak_rss_kb(pid: int) -> int:
    # VmHWM belongs to the process's own memory map; wait4's ru_maxrss would
    # also count this (large) parent, whose peak a forked child inherits.
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0


def attach_time(label: str, argv: list[str], expect: int) -> None:
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while _links(p.pid) < expect and p.poll() is None and time.monotonic() - t0 < 30:
        time.sleep(0.0005)
    t1 = time.monotonic()
    peak = 0
    for _ in range(20):  # two seconds with events flowing
        peak = max(peak, _peak_rss_kb(p.pid))
        time.sleep(0.1)
    p.send_signal(2)
    p.wait()
    print(f"start   {label:<28} attached after {t1 - t0:6.3f} s | peak RSS {peak / 1024:6.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--iterations", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3, help="drain measurements (the VM is noisy)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    loop, _ = build()
    print(f"host: {os.uname().release}, {os.cpu_count()} CPUs")
    for _ in range(args.repeat):
        drain_rate(loop, args.events)
    target = str(BUILD / "target")
    Path(target).write_text("x")
    for _ in range(2):
        overhead(loop, args.iterations, target)
    gb = str(ROOT / ".venv/bin/gadgetbook")
    attach_time("gadgetbook opensnoop (CLI)", [gb, "opensnoop", "-o", "json"], 6)
    if shutil.which("bpftrace"):
        attach_time("bpftrace (2 tracepoints)", ["bpftrace", "-e",
                    "tracepoint:syscalls:sys_enter_openat { @[tid] = 1; } "
                    "tracepoint:syscalls:sys_exit_openat { delete(@[tid]); }"], 2)
    shutil.rmtree(BUILD, ignore_errors=True)


if __name__ == "__main__":
    main()
