"""Network gadgets benchmark: tcptop's cost to a loopback transfer at full speed, tcptracer's cost per connection.

Run as root: `.venv/bin/python benchmarks/network.py`. Each case alternates untraced and traced runs of the
same C workload (benchmarks/tcpblast.c) and reports medians: throughput (wall clock), and the CPU time the
sender and receiver used (what tracing adds to them, less disturbed by whatever else the machine runs).
In the same session: tcptop's BTF-tracepoint path and its classic-tracepoint fallback, bpftrace doing
tcptop's work (a sum per process and socket in a map), and bcc doing the same where it can compile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bpfstats import kernel_stats, program_runs  # noqa: E402
from peers import has_bpftrace, start_bcc, stop_bcc  # noqa: E402

BPFTRACE_TCPTOP = """
tracepoint:sock:sock_send_length /args->protocol == 6 && args->ret > 0/ { @sent[pid, args->sk] = sum(args->ret); }
tracepoint:sock:sock_recv_length /args->protocol == 6 && args->ret > 0/ { @recv[pid, args->sk] = sum(args->ret); }
interval:s:1 { clear(@sent); clear(@recv); }
"""

BCC_TCPTOP = r"""
struct key_t { u32 pid; u64 sk; };
BPF_HASH(sent, struct key_t, u64, 16384);
BPF_HASH(received, struct key_t, u64, 16384);
TRACEPOINT_PROBE(sock, sock_send_length) {
    if (args->protocol != 6 || args->ret <= 0) return 0;
    struct key_t k = {.pid = bpf_get_current_pid_tgid() >> 32, .sk = (u64)args->sk};
    sent.increment(k, args->ret);
    return 0;
}
TRACEPOINT_PROBE(sock, sock_recv_length) {
    if (args->protocol != 6 || args->ret <= 0) return 0;
    struct key_t k = {.pid = bpf_get_current_pid_tgid() >> 32, .sk = (u64)args->sk};
    received.increment(k, args->ret);
    return 0;
}
"""

# Reads and clears both maps every second, as tcptop does; SIGTERM ends it after a last reading.
BCC_TCPTOP_RUNNER = """
import signal, sys, time
from bcc import BPF
b = BPF(text=sys.argv[1])
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
print("ready", flush=True)
total = 0
while True:
    time.sleep(1 if not stop else 0)
    for name in ("sent", "received"):
        total += sum(v.value for v in b[name].values())
        b[name].clear()
    if stop:
        break
print(total, flush=True)
"""

BTF_PROGRAMS = ("tpbtf_sock_send_length", "tpbtf_sock_recv_length")


def build() -> tuple[str, str]:
    """The workload, and the empty program whose run time is the kernel's counting alone."""
    tmp = Path(tempfile.mkdtemp(prefix="gadgetbook-netbench-"))
    subprocess.run(["gcc", "-O2", "-o", tmp / "tcpblast", HERE / "tcpblast.c"], check=True)
    root = HERE.parent
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I", root / "bpf/include",
                    "-I", root / "bpf/.build", "-c", HERE / "bpf/empty_send.bpf.c", "-o", tmp / "empty.bpf.o"],
                   check=True)
    return str(tmp / "tcpblast"), str(tmp / "empty.bpf.o")


def once(blast: str, *args: str) -> tuple[float, float]:
    """One run of the workload: (its wall-clock result, the CPU seconds it used; 0 where it reports none)."""
    p = subprocess.Popen([blast, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    time.sleep(0.05)  # the receiver is connected and waiting
    out, _ = p.communicate("go\n", timeout=300)
    if p.returncode:
        raise RuntimeError(f"tcpblast {' '.join(args)} failed")
    values = [float(v) for v in out.split()]
    return values[0], values[1] if len(values) > 1 else 0.0


class Traced:
    """A context in which a tracer is attached: a gadgetbook gadget (`avoid`: programs the loader passes
    over, to run a fallback), bpftrace, or bcc."""

    def __init__(self, kind: str, gadget: str = "", avoid: tuple[str, ...] = (), **params) -> None:
        self.kind, self.gadget, self.avoid, self.params = kind, gadget, avoid, params

    def __enter__(self):
        if self.kind == "gadgetbook":
            import gadgetbook
            from gadgetbook.kernel.loader import AVOID_ENV

            if self.avoid:
                os.environ[AVOID_ENV] = ",".join(self.avoid)
            try:
                self.run = gadgetbook.start(self.gadget, **self.params)
            finally:
                os.environ.pop(AVOID_ENV, None)
        elif self.kind == "bpftrace":
            self.proc = subprocess.Popen(["bpftrace", "-e", BPFTRACE_TCPTOP], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
            self.proc.stdout.readline()  # "Attaching N probes..."
            time.sleep(0.3)
        elif self.kind == "bcc":
            self.proc = start_bcc(BCC_TCPTOP_RUNNER, BCC_TCPTOP)
        return self

    def __exit__(self, *exc):
        if self.kind == "gadgetbook":
            self.run.stop()
            self.result = self.run.result()
        elif self.kind == "bpftrace":
            self.proc.terminate()
            self.proc.wait()
        elif self.kind == "bcc":
            stop_bcc(self.proc)


def compare(blast: str, args: list[str], tracers: dict[str, Traced], repeats: int
            ) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {"untraced": [], **{name: [] for name in tracers}}
    once(blast, *args)  # warm up
    order = list(times)
    for i in range(repeats):
        # Rotate who goes first: on a shared VM, drift would otherwise favour one side.
        for name in order[i % len(order):] + order[: i % len(order)]:
            if name not in times:
                continue  # a peer that cannot run here
            if name == "untraced":
                times[name].append(once(blast, *args))
                continue
            try:
                with tracers[name]:
                    times[name].append(once(blast, *args))
            except RuntimeError as exc:
                print(f"  {name}: unavailable here ({exc})")
                del times[name]
    return times


def report(title: str, unit: str, values: dict[str, list[float]], scale: float = 1.0, word: str = "time") -> None:
    base = statistics.median(values["untraced"])
    print(title)
    for name, vs in values.items():
        med = statistics.median(vs)
        extra = "" if name == "untraced" else f"  ({(med / base - 1) * 100:+.1f}% {word} vs untraced)"
        spread = f"[{min(vs) * scale:.3g}..{max(vs) * scale:.3g}]"
        print(f"  {name:<34} {med * scale:10.4g} {unit} median of {len(vs)} {spread}{extra}")


def program_cost(blast: str, nbytes: int, chunk: int, avoid: tuple[str, ...]) -> dict[str, float]:
    """tcptop's programs' own run time per call (ns), from the kernel's statistics, in a run of its own."""
    with kernel_stats(), Traced("gadgetbook", "tcptop", avoid=avoid, interval=1) as traced:
        once(blast, "stream", str(nbytes), str(chunk))
        runs = program_runs(traced.run.sources[0].obj)
    return {name: ns / count for name, (count, ns) in runs.items() if count}


def counting_cost(blast: str, empty: str, nbytes: int, chunk: int) -> float:
    """The run time per call the kernel reports for an empty program on the send hook: its counting alone."""
    from gadgetbook.kernel.loader import BpfObject, LoadPlan

    with kernel_stats(), BpfObject(empty, LoadPlan()) as obj:
        once(blast, "stream", str(nbytes), str(chunk))
        ((count, ns),) = program_runs(obj).values()
    return ns / count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", type=int, default=1 << 30, help="bytes per transfer (default 1 GiB)")
    ap.add_argument("--connections", type=int, default=10000, help="connections per connect/close loop")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--chunks", default="65536,4096", help="send sizes to measure, comma-separated")
    ap.add_argument("--no-tcptracer", action="store_true", help="measure tcptop only")
    opts = ap.parse_args()
    blast, empty = build()
    print(f"host: {os.uname().release}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    for chunk in (int(c) for c in opts.chunks.split(",")):
        tracers = {
            "gadgetbook tcptop (tp_btf)": Traced("gadgetbook", "tcptop", interval=1),
            "gadgetbook tcptop (tracepoints)": Traced("gadgetbook", "tcptop", avoid=BTF_PROGRAMS, interval=1),
            "bcc (same sums)": Traced("bcc"),
        }
        if has_bpftrace():
            tracers["bpftrace (same sums)"] = Traced("bpftrace")
        times = compare(blast, ["stream", str(opts.bytes), str(chunk)], tracers, opts.repeats)
        gib = opts.bytes / (1 << 30)
        report(f"tcptop: {gib:g} GiB over 127.0.0.1 in {chunk}-byte sends (GiB/s, higher is better)",
               "GiB/s", {k: [gib / wall for wall, _ in v] for k, v in times.items()}, word="throughput")
        report("  the same runs: CPU seconds of sender and receiver (lower is better)",
               "s", {k: [cpu for _, cpu in v] for k, v in times.items()}, word="CPU")
        # Where the cost is spent, whatever else the machine runs: the programs' own time per call, and what
        # one send's share of it is next to the untraced CPU time per send.
        base_cpu = statistics.median(cpu for _, cpu in times["untraced"]) / (opts.bytes / chunk) * 1e9
        counting = counting_cost(blast, empty, opts.bytes, chunk)
        print(f"  programs' own run time per call (kernel's statistics, less {counting:.0f} ns that an empty "
              f"program on the send hook reads: the counting); untraced CPU per send {base_cpu:.0f} ns")
        for label, avoid in (("tp_btf", ()), ("tracepoints", BTF_PROGRAMS)):
            per_call = {name: ns - counting for name, ns in program_cost(blast, opts.bytes, chunk, avoid).items()}
            send = next(ns for name, ns in per_call.items() if "send" in name)
            calls = ", ".join(f"{name} {ns:.0f} ns" for name, ns in per_call.items())
            print(f"  gadgetbook tcptop ({label}): {calls}; per send {send / base_cpu:.1%} of the untraced CPU")

    if opts.no_tcptracer:
        return
    tracers = {"gadgetbook tcptracer": Traced("gadgetbook", "tcptracer")}
    times = compare(blast, ["connect", str(opts.connections)], tracers, opts.repeats)
    walls = {k: [wall for wall, _ in v] for k, v in times.items()}
    report(f"tcptracer: connect/accept/close rounds on 127.0.0.1, {opts.connections} per run (ns per round)",
           "ns", walls)
    base, traced = statistics.median(walls["untraced"]), statistics.median(walls["gadgetbook tcptracer"])
    print(f"  tcptracer adds {traced - base:.0f} ns per connection (4 rows each: connect, accept, 2 closes)")


if __name__ == "__main__":
    main()
