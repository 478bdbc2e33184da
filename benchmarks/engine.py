"""Engine benchmark: ring-buffer drain into a DataFrame, cost to a traced loop, time to attach, peak RSS.

Run as root: `.venv/bin/python benchmarks/engine.py`. Compares with bpftrace (and bcc when it can
compile here) on the same machine in the same run, and prints one line per measurement.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from bpfstats import kernel_stats, program_runs  # noqa: E402
from peers import has_bpftrace, start_bcc, stop_bcc  # noqa: E402

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


def go(w: subprocess.Popen) -> tuple[float, float]:
    """Start the workload and wait for it: (wall-clock ns, CPU ns) per iteration."""
    w.stdin.write("go\n")
    w.stdin.flush()
    out = w.stdout.read()
    w.wait()
    wall, cpu = out.split()
    return float(wall), float(cpu)


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

ONE_HOOK = ("tp_sys_exit_openat", "tp_sys_exit_open", "tp_sys_exit_openat2")


def gadgetbook_tracer(host_wide: bool, two_hooks: bool):
    """opensnoop on the workload's pid (or host-wide), through its one-hook path or its two-hook fallback."""

    def attach(w: subprocess.Popen):
        import gadgetbook
        from gadgetbook.kernel.loader import AVOID_ENV

        if two_hooks:  # what a kernel without bpf_task_pt_regs runs
            os.environ[AVOID_ENV] = ",".join(ONE_HOOK)
        try:
            r = gadgetbook.start("opensnoop", **({} if host_wide else {"pid": w.pid}))
        finally:
            os.environ.pop(AVOID_ENV, None)

        def detach() -> str:
            r.stop()
            df = r.result()
            lost = sum(df.attrs["lost"].values())
            share = f" ({lost / (len(df) + lost):.2%} of all)" if lost else ""
            return f"rows={int((df.pid == w.pid).sum()):,} lost={lost:,}{share}" + (
                f" (+{len(df) - int((df.pid == w.pid).sum()):,} rows of other processes)" if host_wide else "")

        return detach

    return attach


def bpftrace_tracer(w: subprocess.Popen):
    prog = (f"tracepoint:syscalls:sys_enter_openat /pid == {w.pid}/ {{ @fn[tid] = args->filename; }} "
            f"tracepoint:syscalls:sys_exit_openat /pid == {w.pid}/ "
            '{ printf("%d %s %d\\n", pid, str(@fn[tid]), args->ret); delete(@fn[tid]); }')
    bt = subprocess.Popen(["bpftrace", "-e", prog], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    bt.stdout.readline()  # "Attaching 2 probes..."

    def detach() -> str:
        bt.terminate()
        lines = sum(1 for _ in bt.stdout)
        bt.wait()
        return f"lines printed={lines:,}"

    return detach


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

# SIGTERM only sets a flag: raised from a handler that runs inside the ring buffer callback, SystemExit
# would be swallowed by ctypes and the loop would go on.
BCC_RUNNER = """
import signal, sys
from bcc import BPF
b = BPF(text=sys.argv[1].replace('PID', sys.argv[2]))
n, stop = [0], []
def cb(ctx, data, size): n[0] += 1
b['events'].open_ring_buffer(cb)
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
print('ready', flush=True)
while not stop:
    b.ring_buffer_poll(100)
b.ring_buffer_consume()
print(n[0], flush=True)
"""


def bcc_tracer(w: subprocess.Popen):
    """bcc's way: one exit hook with fewer columns (pid, return value, comm), a wakeup and a Python callback
    per event."""
    bcc = start_bcc(BCC_RUNNER, BCC_PROGRAM, str(w.pid))
    return lambda: f"events={int(stop_bcc(bcc)):,}"


def program_cost(loop: str, n: int, target: str, two_hooks: bool) -> tuple[float, dict[str, float]]:
    """opensnoop's programs' own run time per event, from the kernel's statistics: (total, per program)."""
    import gadgetbook
    from gadgetbook.kernel.loader import AVOID_ENV

    w = workload(loop, "open", n, target)
    with kernel_stats():
        if two_hooks:
            os.environ[AVOID_ENV] = ",".join(ONE_HOOK)
        try:
            r = gadgetbook.start("opensnoop", pid=w.pid)
        finally:
            os.environ.pop(AVOID_ENV, None)
        go(w)
        runs = program_runs(r.sources[0].obj)
        r.stop()
    events = len(r.result())
    per = {name: ns / events for name, (count, ns) in runs.items() if count}
    return sum(per.values()), per


def overhead(loop: str, n: int, target: str, rounds: int) -> None:
    """Each tracer in turn around the same open+close loop, rounds rotated; medians of CPU time per iteration
    (what the traced program pays, whatever else the machine runs) and of wall-clock time."""
    tracers = {
        "untraced": None,
        "gadgetbook opensnoop, two hooks (fallback)": gadgetbook_tracer(False, True),
        "gadgetbook opensnoop, one hook": gadgetbook_tracer(False, False),
        "gadgetbook host-wide, two hooks (fallback)": gadgetbook_tracer(True, True),
        "gadgetbook host-wide, one hook": gadgetbook_tracer(True, False),
        "bcc exit hook + Python callback": bcc_tracer,
    }
    if has_bpftrace():
        tracers["bpftrace enter+exit printf"] = bpftrace_tracer
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in tracers}
    facts: dict[str, list[str]] = {name: [] for name in tracers}
    names = list(tracers)
    for i in range(rounds):
        for name in names[i % len(names):] + names[: i % len(names)]:
            if name not in times:
                continue  # a peer that cannot run here
            w = workload(loop, "open", n, target)
            try:
                detach = tracers[name](w) if tracers[name] else None
            except RuntimeError as exc:
                w.kill()
                w.wait()
                print(f"loop    {name}: unavailable here ({exc})")
                del times[name]
                continue
            times[name].append(go(w))
            if detach:
                facts[name].append(detach())
    base_wall = statistics.median(t[0] for t in times["untraced"])
    base_cpu = statistics.median(t[1] for t in times["untraced"])
    print(f"loop    open+close, {n:,} iterations, median of {rounds} rounds (ns per iteration)")
    added = {}
    for name, values in times.items():
        wall = statistics.median(t[0] for t in values)
        cpu = statistics.median(t[1] for t in values)
        added[name] = cpu - base_cpu
        extra = "" if name == "untraced" else f"  +{cpu - base_cpu:6.0f} cpu ({cpu / base_cpu:4.2f}x)"
        print(f"loop    {name:<44} cpu {cpu:7.0f}  wall {wall:7.0f}{extra}")
        for fact in facts[name]:
            print(f"          {fact}")
    # The programs' own time, counted by the kernel in runs of their own (the counting costs time too).
    costs = {hooks: [program_cost(loop, n, target, hooks == "two hooks") for _ in range(3)]
             for hooks in ("two hooks", "one hook")}
    totals = {hooks: statistics.median(t for t, _ in runs) for hooks, runs in costs.items()}
    for hooks, runs in costs.items():
        parts = ", ".join(f"{name} {ns:.0f}" for name, ns in runs[0][1].items())
        print(f"bpf     opensnoop's programs, {hooks}: {totals[hooks]:5.0f} ns per event (kernel's run time, its "
              f"counting included in each run: {parts})")
    print(f"ratio   opensnoop's programs' time per event, one hook / two hooks: "
          f"{totals['one hook'] / totals['two hooks']:.2f}")
    one, two = added["gadgetbook opensnoop, one hook"], added["gadgetbook opensnoop, two hooks (fallback)"]
    print(f"ratio   opensnoop's added cost, one hook / two hooks: {one / two:.2f} (wall {base_wall:.0f} untraced)")
    print(f"ratio   host-wide added cost, one hook / two hooks: "
          f"{added['gadgetbook host-wide, one hook'] / added['gadgetbook host-wide, two hooks (fallback)']:.2f}")
    for peer in ("bcc exit hook + Python callback", "bpftrace enter+exit printf"):
        if peer in added:
            print(f"ratio   {peer} added cost / gadgetbook one hook's: {added[peer] / one:.2f}")


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
    ap.add_argument("--rounds", type=int, default=5, help="rounds of every tracer around the loop")
    ap.add_argument("--only", choices=("drain", "overhead", "start"), help="run one part")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    loop, _ = build()
    print(f"host: {os.uname().release}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if args.only in (None, "drain"):
        for _ in range(args.repeat):
            drain_rate(loop, args.events)
    if args.only in (None, "overhead"):
        target = str(BUILD / "target")
        Path(target).write_text("x")
        overhead(loop, args.iterations, target, args.rounds)
    if args.only in (None, "start"):
        gb = str(ROOT / ".venv/bin/gadgetbook")
        attach_time("gadgetbook opensnoop (CLI)", [gb, "opensnoop", "-o", "json"], 3)
        if has_bpftrace():
            attach_time("bpftrace (2 tracepoints)", ["bpftrace", "-e",
                        "tracepoint:syscalls:sys_enter_openat { @[tid] = 1; } "
                        "tracepoint:syscalls:sys_exit_openat { delete(@[tid]); }"], 2)
    shutil.rmtree(BUILD, ignore_errors=True)


if __name__ == "__main__":
    main()
