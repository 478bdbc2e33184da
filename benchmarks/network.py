"""Network gadgets benchmark: tcptop's cost to a loopback transfer at full speed, tcptracer's cost per connection.

Run as root: `.venv/bin/python benchmarks/network.py`. Each case alternates untraced and traced runs of the
same C workload (benchmarks/tcpblast.c) and reports medians; bpftrace doing tcptop's work (a sum per
process and socket in a map) runs in the same session for comparison when it is installed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

BPFTRACE_TCPTOP = """
tracepoint:sock:sock_send_length /args->protocol == 6 && args->ret > 0/ { @sent[pid, args->sk] = sum(args->ret); }
tracepoint:sock:sock_recv_length /args->protocol == 6 && args->ret > 0/ { @recv[pid, args->sk] = sum(args->ret); }
interval:s:1 { clear(@sent); clear(@recv); }
"""


def build() -> str:
    out = Path(tempfile.mkdtemp(prefix="gadgetbook-netbench-")) / "tcpblast"
    subprocess.run(["gcc", "-O2", "-o", out, HERE / "tcpblast.c"], check=True)
    return str(out)


def once(blast: str, *args: str) -> float:
    p = subprocess.Popen([blast, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    time.sleep(0.05)  # the receiver is connected and waiting
    out, _ = p.communicate("go\n", timeout=300)
    if p.returncode:
        raise RuntimeError(f"tcpblast {' '.join(args)} failed")
    return float(out)


class Traced:
    """A context in which a tracer is attached: a gadgetbook gadget, or bpftrace."""

    def __init__(self, kind: str, gadget: str = "", **params) -> None:
        self.kind, self.gadget, self.params = kind, gadget, params

    def __enter__(self):
        if self.kind == "gadgetbook":
            import gadgetbook

            self.run = gadgetbook.start(self.gadget, **self.params)
        elif self.kind == "bpftrace":
            self.proc = subprocess.Popen(["bpftrace", "-e", BPFTRACE_TCPTOP], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
            self.proc.stdout.readline()  # "Attaching N probes..."
            time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        if self.kind == "gadgetbook":
            self.run.stop()
            self.result = self.run.result()
        elif self.kind == "bpftrace":
            self.proc.terminate()
            self.proc.wait()


def compare(blast: str, args: list[str], tracers: dict[str, Traced], repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"untraced": [], **{name: [] for name in tracers}}
    once(blast, *args)  # warm up
    order = ["untraced", *tracers]
    for i in range(repeats):
        # Rotate who goes first: on a shared VM, drift would otherwise favour one side.
        for name in order[i % len(order):] + order[: i % len(order)]:
            if name == "untraced":
                times[name].append(once(blast, *args))
            else:
                with tracers[name]:
                    times[name].append(once(blast, *args))
    return times


def report(title: str, unit: str, times: dict[str, list[float]], scale: float = 1.0, word: str = "time") -> None:
    base = statistics.median(times["untraced"])
    print(title)
    for name, values in times.items():
        med = statistics.median(values)
        extra = "" if name == "untraced" else f"  ({(med / base - 1) * 100:+.1f}% {word} vs untraced)"
        spread = f"[{min(values) * scale:.3g}..{max(values) * scale:.3g}]"
        print(f"  {name:<22} {med * scale:10.4g} {unit} median of {len(values)} {spread}{extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", type=int, default=1 << 30, help="bytes per transfer (default 1 GiB)")
    ap.add_argument("--connections", type=int, default=10000, help="connections per connect/close loop")
    ap.add_argument("--repeats", type=int, default=7)
    opts = ap.parse_args()
    blast = build()
    has_bpftrace = shutil.which("bpftrace") is not None

    for chunk in (1 << 16, 1 << 12):
        tracers = {"gadgetbook tcptop": Traced("gadgetbook", "tcptop", interval=1)}
        if has_bpftrace:
            tracers["bpftrace (same sums)"] = Traced("bpftrace")
        times = compare(blast, ["stream", str(opts.bytes), str(chunk)], tracers, opts.repeats)
        gib = opts.bytes / (1 << 30)
        rates = {k: [gib / t for t in v] for k, v in times.items()}
        report(f"tcptop: {gib:g} GiB over 127.0.0.1 in {chunk}-byte sends (GiB/s, higher is better)",
               "GiB/s", rates, word="throughput")

    tracers = {"gadgetbook tcptracer": Traced("gadgetbook", "tcptracer")}
    times = compare(blast, ["connect", str(opts.connections)], tracers, opts.repeats)
    report(f"tcptracer: connect/accept/close rounds on 127.0.0.1, {opts.connections} per run (ns per round)",
           "ns", times)
    base, traced = statistics.median(times["untraced"]), statistics.median(times["gadgetbook tcptracer"])
    print(f"  tcptracer adds {traced - base:.0f} ns per connection (4 rows each: connect, accept, 2 closes)")


if __name__ == "__main__":
    main()
