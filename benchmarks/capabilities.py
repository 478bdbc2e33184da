"""capabilities benchmark: the cost of one capability check, untraced and traced, next to bpftrace.

Run as root: `.venv/bin/python benchmarks/capabilities.py`. The workload (benchmarks/loop.c, kill mode) is a
root process calling kill(child, 0) on a child that runs as another user: exactly one capability check
(CAP_KILL, allowed) per call. Each tracer is attached to that process only (by pid), except "another pid"
cases, which measure what a process that is not traced pays once the tracepoint has a program. Runs of
every case alternate and the medians are compared: the added ns per check, and ratios.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def build() -> str:
    where = tempfile.mkdtemp(prefix="gadgetbook-capbench-")
    atexit.register(shutil.rmtree, where, ignore_errors=True)  # nothing left behind
    out = Path(where) / "loop"
    subprocess.run(["gcc", "-O2", "-o", out, HERE / "loop.c"], check=True)
    return str(out)


class Workload:
    """One loop process, waiting on stdin until the tracer is in place."""

    def __init__(self, loop: str, n: int) -> None:
        self.n = n
        self.p = subprocess.Popen([loop, "kill", str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        time.sleep(0.15)  # its child has dropped to another user

    def go(self) -> tuple[float, float]:
        """(wall ns per check, CPU ns per check of the loop process itself, kernel time included)."""
        self.p.stdin.write("go\n")
        self.p.stdin.close()
        out = self.p.stdout.read()
        _, status, usage = os.wait4(self.p.pid, 0)
        self.p.returncode = os.waitstatus_to_exitcode(status)
        if self.p.returncode:
            raise RuntimeError("the loop failed")
        return float(out), (usage.ru_utime + usage.ru_stime) * 1e9 / self.n


class Gadgetbook:
    def __init__(self, other_pid: bool = False, **params) -> None:
        self.other_pid, self.params = other_pid, params
        self.seen: list[int] = []

    def attach(self, pid: int) -> None:
        import gadgetbook

        # "another pid": the programs run and reject every check (pid 1 makes none here).
        self.run = gadgetbook.start("capabilities", pid=1 if self.other_pid else pid, **self.params)

    def detach(self) -> None:
        self.run.stop()
        df = self.run.result()
        kill = df[df.capability == "CAP_KILL"] if len(df) else df
        self.seen.append(int(kill["count"].sum()) if len(kill) else 0)
        self.lost = sum(df.attrs["lost"].values())


class Bpftrace:
    def __init__(self, program: str, other_pid: bool = False) -> None:
        self.program, self.other_pid = program, other_pid
        self.seen: list[int] = []

    def attach(self, pid: int) -> None:
        prog = self.program.replace("PID", "1" if self.other_pid else str(pid))
        # Its output goes to a file: a pipe nobody reads during the run would stall printf's lines.
        self.out = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(["bpftrace", "-e", prog], stdout=self.out, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while "Attaching" not in self._output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bpftrace did not attach: {self._output()}")
            time.sleep(0.02)
        time.sleep(0.2)

    def _output(self) -> str:
        self.out.seek(0)
        return self.out.read()

    def detach(self) -> None:
        time.sleep(0.5)  # printf's lines still in its buffers get printed, not cut off at exit
        self.proc.send_signal(signal.SIGINT)  # as Ctrl-C: bpftrace prints its maps and exits
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        out = self._output()
        self.out.close()
        # printf prints a line per check; count() prints "@[key]: N" per key at exit (keys with a stack
        # span several lines).
        counted = [int(n) for n in re.findall(r"^@.*?\]: (\d+)$", out, flags=re.M | re.S)]
        self.seen.append(sum(counted) if counted else sum(1 for line in out.splitlines() if line[:1].isdigit()))
        self.lost = sum(int(n) for n in re.findall(r"Lost (\d+) events", out))  # its perf buffer's drops


BPFTRACE_PRINTF = 'tracepoint:capability:cap_capable /pid == PID/ { printf("%d %d %d\\n", tid, args->cap, args->ret); }'
BPFTRACE_COUNT = "tracepoint:capability:cap_capable /pid == PID/ { @[args->cap, args->ret] = count(); }"
BPFTRACE_STACKS = "tracepoint:capability:cap_capable /pid == PID/ { @[kstack(8), args->cap, args->ret] = count(); }"


def measure(loop: str, n: int, tracers: dict[str, Callable[[], object]], repeats: int):
    """(wall and CPU ns per check of each run, by case; the tracers, with what each saw)."""
    times: dict[str, list[tuple[float, float]]] = {"untraced": [], **{name: [] for name in tracers}}
    made = {name: make() for name, make in tracers.items()}
    Workload(loop, n // 10).go()  # warm up
    order = ["untraced", *tracers]
    for i in range(repeats):
        # Rotate who goes first: on a shared VM, drift would otherwise favour one side.
        for name in order[i % len(order):] + order[: i % len(order)]:
            w = Workload(loop, n)
            if name == "untraced":
                times[name].append(w.go())
                continue
            tracer = made[name]
            tracer.attach(w.p.pid)
            try:
                times[name].append(w.go())
            finally:
                tracer.detach()
    return times, made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checks", type=int, default=300_000, help="capability checks per run")
    ap.add_argument("--repeats", type=int, default=5)
    opts = ap.parse_args()
    loop = build()
    tracers: dict[str, Callable[[], object]] = {
        "gadgetbook (a row per check)": lambda: Gadgetbook(),
        "gadgetbook --unique": lambda: Gadgetbook(unique=True),
        "gadgetbook, another pid": lambda: Gadgetbook(other_pid=True),
    }
    if shutil.which("bpftrace"):
        tracers["bpftrace printf"] = lambda: Bpftrace(BPFTRACE_PRINTF)
        tracers["bpftrace count()"] = lambda: Bpftrace(BPFTRACE_COUNT)
        tracers["bpftrace count() by kstack(8)"] = lambda: Bpftrace(BPFTRACE_STACKS)
        tracers["bpftrace, another pid"] = lambda: Bpftrace(BPFTRACE_COUNT, other_pid=True)
    times, made = measure(loop, opts.checks, tracers, opts.repeats)
    wall = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    print(f"capabilities: kill(child, 0) by root, one CAP_KILL check per call, {opts.checks:,} per run, "
          f"median of {opts.repeats}.")
    print("  CPU is the traced process's own time (its kernel time included: the BPF program runs there);")
    print("  wall also counts what the tracer's user side takes from the same 2 cores.")
    print(f"  {'case':<32} {'wall ns':>8} {'CPU ns':>7} {'+CPU ns':>8} {'CPU x':>6}  added CPU vs bpftrace's")
    # The peers doing the same work: a row per check (printf), and the same kernel stack per check.
    peers = {"printf": "bpftrace printf", "kstack": "bpftrace count() by kstack(8)"}
    for name in times:
        line = f"  {name:<32} {wall[name]:8.0f} {cpu[name]:7.0f}"
        if name != "untraced":
            added = cpu[name] - cpu["untraced"]
            line += f" {added:+8.0f} {cpu[name] / cpu['untraced']:6.2f}"
            if name.startswith("gadgetbook") and added > 0:
                for short, peer in peers.items():
                    peer_added = cpu.get(peer, 0) - cpu["untraced"]
                    line += f"  x{added / peer_added:.2f} of {short}'s" if peer_added > 0 else ""
            t = made[name]
            line += f"  (checks seen {statistics.median(t.seen):,.0f}, lost {t.lost})"
        print(line)


if __name__ == "__main__":
    main()
