"""Investigation benchmark: a long run streamed to a dataset, filtered against full replay, dns's cost per query
to the client (with tcpdump and bpftrace in the same run), four gadgets at once into this process, and the
timeline for a million events.

Run as root: `.venv/bin/python benchmarks/investigate.py [--events 100000000] [--only NAME ...]`. Prints one
line per measurement; this process stands for the notebook's kernel.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
BUILD = Path(tempfile.mkdtemp(prefix="gadgetbook-invbench-"))
DNS_PORT = 53530


def say(what: str, **values) -> None:
    print(f"{what}: " + ", ".join(f"{k}={v}" for k, v in values.items()), flush=True)


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def hwm_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def build() -> dict[str, str]:
    out = {}
    for name in ("loop", "dnsblast", "tcpblast"):
        out[name] = str(BUILD / name)
        subprocess.run(["gcc", "-O2", "-o", out[name], HERE / f"{name}.c"], check=True)
    obj = BUILD / "flood.bpf.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I", ROOT / "bpf/include",
                    "-I", ROOT / "bpf/.build", "-c", HERE / "bpf/flood.bpf.c", "-o", obj], check=True)
    (BUILD / "flood.toml").write_text('name = "flood"\ndescription = "benchmark"\n')
    out["flood"] = str(BUILD / "flood.toml")
    return out


def waiting(*argv: str) -> subprocess.Popen:
    """A workload that starts when it reads a line (so a gadget can filter on its pid first)."""
    return subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def go(p: subprocess.Popen) -> float:
    p.stdin.write("go\n")
    p.stdin.flush()
    out = p.stdout.read()
    p.wait()
    return float(out)


# -- 1. a long run streamed to a dataset ----------------------------------------------------------

def dataset(tools: dict[str, str], events: int, folder: Path, tail: int) -> None:
    """getppid() as fast as it goes, one 80-byte event each, streamed to a dataset; this process's memory."""
    import socket

    from gadgetbook.api import DEFAULT_TAIL_ROWS
    from gadgetbook.catalog.spec import load_spec
    from gadgetbook.frames.dataset import DatasetWriter
    from gadgetbook.host_run import start_on_host
    from gadgetbook.targets.local import LocalContainers

    spec = load_spec(Path(tools["flood"]))
    w = waiting(tools["loop"], "getppid", str(events))
    before = rss_kb()
    run = start_on_host(spec, {}, mntns_ids=None, pid=w.pid, ring_bytes=64 << 20, containers=LocalContainers(),
                        node=socket.gethostname())
    run.stream_to(DatasetWriter(folder, run.columns, run.attrs()), tail_rows=tail or DEFAULT_TAIL_ROWS)
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(1.0):
            samples.append((time.monotonic() - t0, rss_kb()))

    threading.Thread(target=watch, daemon=True).start()
    go(w)
    # Consume like the notebook's live view does (it keeps nothing): drain until the kernel has handed all.
    while run.counters.events + run.counters.lost_total < events and time.monotonic() - t0 < 3600:
        for _ in run.batches(wait=0.05):
            if run.counters.events + run.counters.lost_total >= events:
                break
    run.stop()
    run.conclude(want_result=False)
    elapsed = time.monotonic() - t0
    done.set()
    written = run.writer.rows
    size = sum(p.stat().st_size for p in folder.rglob("*.parquet"))
    mid = [kb for t, kb in samples if t > elapsed * 0.25]
    say("dataset", events=f"{written:,}", lost=f"{run.counters.lost_total:,}", seconds=f"{elapsed:.1f}",
        events_per_s_to_disk=f"{written / elapsed:,.0f}", files=run.writer.files,
        bytes_per_event=f"{size / max(written, 1):.1f}", rss_before_mb=f"{before / 1024:.0f}",
        rss_peak_mb=f"{hwm_kb() / 1024:.0f}",
        rss_quarter_to_end_mb=f"{min(mid, default=0) / 1024:.0f}..{max(mid, default=0) / 1024:.0f}")


def replay(folder: Path) -> None:
    """The whole dataset against a filtered read (two columns, one minute, one pid)."""
    import pandas as pd

    import gadgetbook

    t = time.perf_counter()
    part = gadgetbook.replay(folder, show=False, columns=["timestamp", "pid"], end=None)
    cols_s = time.perf_counter() - t
    first = part["timestamp"].min()
    del part
    t = time.perf_counter()
    span = gadgetbook.replay(folder, show=False, columns=["timestamp", "pid"], start=first + pd.Timedelta("2s"),
                             end=first + pd.Timedelta("3s"))
    span_s = time.perf_counter() - t
    n_span = len(span)
    del span
    base = hwm_kb()
    t = time.perf_counter()
    whole = gadgetbook.replay(folder, show=False)
    whole_s = time.perf_counter() - t
    say("replay", rows=f"{len(whole):,}", full_s=f"{whole_s:.2f}", two_columns_s=f"{cols_s:.2f}",
        one_second_span_two_columns_s=f"{span_s:.3f}", span_rows=f"{n_span:,}",
        full_over_span=f"{whole_s / max(span_s, 1e-6):.0f}x", peak_rss_mb=f"{max(hwm_kb(), base) / 1024:.0f}")


# -- 2. dns: cost per query to the client ---------------------------------------------------------

BPFTRACE_DNS = ("tracepoint:net:net_dev_queue { @sent = count(); } "
                "tracepoint:net:netif_receive_skb { @received = count(); }")


class Tracer:
    def __init__(self, name: str, client_pid: int | None) -> None:
        self.name, self.client_pid = name, client_pid

    def __enter__(self):
        if self.name.startswith("gadgetbook"):
            import gadgetbook

            pid = {"pid": self.client_pid} if self.name == "gadgetbook dns --pid" else {}
            self.run = gadgetbook.start("dns", port=DNS_PORT, local=True, **pid)
        elif self.name == "bpftrace":
            self.proc = subprocess.Popen(["bpftrace", "-e", BPFTRACE_DNS], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
            self.proc.stdout.readline()
            time.sleep(0.3)
        elif self.name == "tcpdump":
            # Inspektor Gadget's way: a packet socket with a filter in the client's network namespace.
            self.proc = subprocess.Popen(["tcpdump", "-i", "lo", "-w", "/dev/null", "-U", "udp", "port",
                                          str(DNS_PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.proc.stderr.readline()
            time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        if self.name.startswith("gadgetbook"):
            self.run.stop()
            self.rows = len(self.run.result())
            self.lost = self.run.counters.lost_total
        elif self.name in ("bpftrace", "tcpdump"):
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)


def dns_cost(tools: dict[str, str], queries: int, repeats: int) -> None:
    server = subprocess.Popen([tools["dnsblast"], "serve", str(DNS_PORT)])
    try:
        time.sleep(0.2)
        names = ["untraced", "gadgetbook dns --pid", "gadgetbook dns", "bpftrace", "tcpdump"]
        names = [n for n in names if n != "bpftrace" or shutil.which("bpftrace")]
        names = [n for n in names if n != "tcpdump" or shutil.which("tcpdump")]
        times: dict[str, list[float]] = {n: [] for n in names}
        rows: dict[str, list[int]] = {}
        go(waiting(tools["dnsblast"], "ask", str(DNS_PORT), str(queries)))  # warm up
        for i in range(repeats):
            for name in names[i % len(names):] + names[:i % len(names)]:
                client = waiting(tools["dnsblast"], "ask", str(DNS_PORT), str(queries))
                if name == "untraced":
                    times[name].append(go(client))
                    continue
                with Tracer(name, client.pid) as tr:
                    times[name].append(go(client))
                    time.sleep(0.2)
                if name.startswith("gadgetbook"):
                    rows.setdefault(name, []).append(tr.rows)
        base = statistics.median(times["untraced"])
        for name in names:
            med = statistics.median(times[name])
            extra = {} if name == "untraced" else {"added_ns_per_query": f"{med - base:+.0f}",
                                                  "ratio": f"{med / base:.3f}"}
            if name in rows:
                extra["rows_per_run"] = f"{statistics.median(rows[name]):.0f} of {3 * queries}"
            say(f"dns cost ({name})", ns_per_query=f"{med:.0f}", **extra)
    finally:
        server.terminate()
        server.wait()


# -- 3. four gadgets into this process ------------------------------------------------------------

def investigation(tools: dict[str, str], seconds: float) -> None:
    """execsnoop, opensnoop, tcptracer and dns on this host while workloads for each run as fast as they go."""
    import gadgetbook
    from gadgetbook.investigation import start_investigation

    server = subprocess.Popen([tools["dnsblast"], "serve", str(DNS_PORT)])
    loads: list[subprocess.Popen] = []
    try:
        time.sleep(0.2)
        live = start_investigation("execsnoop,opensnoop,tcptracer,dns", params={"dns": {"port": DNS_PORT}},
                                   local=True, timeout=seconds)
        c0, t0 = cpu_s(), time.monotonic()
        loads = [waiting(tools["loop"], "open", "100000000", "/dev/null"),
                 waiting(tools["dnsblast"], "ask", str(DNS_PORT), "100000000"),
                 subprocess.Popen([tools["tcpblast"], "connect", "100000000"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL),
                 subprocess.Popen(["sh", "-c", "while :; do /bin/true; done"])]
        for p in loads[:3]:
            p.stdin.write("go\n")
            p.stdin.flush()
        # What the notebook does while it runs: take each run's batches as they come.
        streams = [r.batches(wait=0.02) for r in live.runs.values()]
        while live.running:
            for s in streams:
                next(s, None)
        inv = live.conclude()
        wall, cpu = time.monotonic() - t0, cpu_s() - c0
    finally:
        for p in loads:
            p.kill()
            p.wait()
        server.terminate()
        server.wait()
    per = {g: len(inv.raw[g]) for g in inv.gadgets}
    lost = {g: sum((inv.raw[g].attrs.get("lost") or {}).values()) for g in inv.gadgets}
    total = sum(per.values())
    say("investigation of 4 gadgets", seconds=f"{wall:.1f}", events_per_s=f"{total / wall:,.0f}",
        per_gadget=" ".join(f"{g}:{n / wall:,.0f}/s" for g, n in per.items()), lost=sum(lost.values()),
        kernel_process_cpu=f"{cpu / wall:.2f} cores", rss_mb=f"{rss_kb() / 1024:.0f}")
    t = time.perf_counter()
    conns = inv["tcptracer"]
    say("investigation joins", rows=f"{sum(len(inv[g]) for g in inv.gadgets):,}",
        seconds=f"{time.perf_counter() - t:.2f}", connections=f"{len(conns):,}")
    del gadgetbook


# -- 4. the timeline for a million events ---------------------------------------------------------

def timeline(events: int) -> None:
    import numpy as np
    import pandas as pd

    from gadgetbook.investigation.result import Investigation
    from gadgetbook.views.timeline import Timeline
    from gadgetbook.views.timeline_data import layout

    rng = np.random.default_rng(1)
    frames = {}
    t0 = np.datetime64("2026-12-01T12:00:00", "ns")
    for g in ("execsnoop", "opensnoop", "tcptracer", "dns"):
        n = events // 4
        frames[g] = pd.DataFrame({
            "timestamp": t0 + np.sort(rng.integers(0, 60_000_000_000, n)).astype("timedelta64[ns]"),
            "node": pd.Categorical(["node-1"] * n), "namespace": pd.Categorical(["shop"] * n),
            "pod": pd.Categorical.from_codes(rng.integers(0, 20, n), [f"api-{i}" for i in range(20)]),
            "container": pd.Categorical(["app"] * n), "pid": rng.integers(1, 1 << 16, n).astype(np.uint32),
            "comm": pd.Categorical(["app"] * n)})
    inv = Investigation(frames, {})
    inv.frames  # noqa: B018 - joins are not what is timed here
    t = time.perf_counter()
    data = layout(inv.frames)
    layout_s = time.perf_counter() - t
    t = time.perf_counter()
    widget = Timeline(data)
    widget_s = time.perf_counter() - t
    t = time.perf_counter()
    png = inv.timeline_image().png
    image_s = time.perf_counter() - t
    say("timeline", events=f"{data.total:,}", lanes=len(data.lanes), mode=data.mode, layout_s=f"{layout_s:.3f}",
        widget_s=f"{widget_s:.3f}", bytes_to_browser=f"{len(widget.counts) + len(widget.marks):,}",
        static_image_s=f"{image_s:.2f}", png_bytes=f"{len(png):,}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=100_000_000, help="events of the dataset run")
    p.add_argument("--tail", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=20_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--only", nargs="*", default=["dataset", "replay", "dns", "investigation", "timeline"])
    ns = p.parse_args()
    tools = build()
    folder = BUILD / "dataset"
    try:
        if "dataset" in ns.only:
            dataset(tools, ns.events, folder, ns.tail)
        if "replay" in ns.only and folder.exists():
            replay(folder)
        if "dns" in ns.only:
            dns_cost(tools, ns.queries, ns.repeats)
        if "investigation" in ns.only:
            investigation(tools, ns.seconds)
        if "timeline" in ns.only:
            timeline(1_000_000)
    finally:
        shutil.rmtree(BUILD, ignore_errors=True)


if __name__ == "__main__":
    main()
