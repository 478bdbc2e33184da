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
        rss_quarter_to_end_mb=f"{min(mid, default=0) / 1024:.0f}..{max(mid, default=0) / 1024:.0f}",
        rss_by_tenth_mb=" ".join(f"{samples[int(i * len(samples) / 10)][1] / 1024:.0f}" for i in range(10))
        if len(samples) >= 10 else "")


def replay(folder: Path, full_limit: int) -> None:
    """The whole dataset against filtered reads (two columns; two columns of one second). Reading 100 M rows
    whole takes about 20 GB here: above `full_limit` rows the full read is left out unless asked for."""
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
    from gadgetbook.frames.dataset import read_facts

    events = int(read_facts(folder)["attrs"].get("events", 0))
    if events > full_limit:
        say("replay", rows=f"{events:,}", full_s="(left out: --full-replay-limit)", two_columns_s=f"{cols_s:.2f}",
            one_second_span_two_columns_s=f"{span_s:.3f}", span_rows=f"{n_span:,}")
        return
    t = time.perf_counter()
    whole = gadgetbook.replay(folder, show=False)
    whole_s = time.perf_counter() - t
    say("replay", rows=f"{len(whole):,}", full_s=f"{whole_s:.2f}", two_columns_s=f"{cols_s:.2f}",
        one_second_span_two_columns_s=f"{span_s:.3f}", span_rows=f"{n_span:,}",
        full_over_span=f"{whole_s / max(span_s, 1e-6):.0f}x", peak_rss_mb=f"{hwm_kb() / 1024:.0f}")


# -- 2. dns: cost per query to the client ---------------------------------------------------------

BPFTRACE_DNS = ("tracepoint:net:net_dev_queue { @sent = count(); } "
                "tracepoint:net:netif_receive_skb { @received = count(); }")


STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def prog_ids() -> dict[int, str]:
    import json

    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return {p["id"]: p.get("name", "") for p in json.loads(out)}


def prog_id_of_fd(fd: int) -> int:
    """The kernel id of a loaded program, from bpf_obj_get_info_by_fd (bpf_prog_info starts type, id)."""
    import ctypes as C

    lib = C.CDLL("libbpf.so.1", use_errno=True)
    info = (C.c_uint8 * 256)()
    size = C.c_uint32(256)
    if lib.bpf_obj_get_info_by_fd(fd, info, C.byref(size)):
        raise OSError(C.get_errno(), "bpf_obj_get_info_by_fd")
    return int.from_bytes(bytes(info[4:8]), "little")


def run_time_ns(ids: list[int]) -> int:
    """Time these programs ran in the kernel so far (needs kernel.bpf_stats_enabled)."""
    import json

    total = 0
    for i in ids:
        out = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(i)], capture_output=True, text=True)
        if out.returncode == 0:
            total += json.loads(out.stdout).get("run_time_ns", 0)
    return total


class Tracer:
    def __init__(self, name: str, client_pid: int | None) -> None:
        self.name, self.client_pid = name, client_pid
        self.kernel_ns = None

    def __enter__(self):
        self.ids_before = set(prog_ids())
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

    def measure(self) -> None:
        """Time the programs spent in the kernel so far (bpf_stats_enabled must be on)."""
        if self.name.startswith("gadgetbook"):
            obj = self.run.sources[0].obj
            ids = [prog_id_of_fd(obj.program_fd(n)) for n in obj.attached]
        elif self.name == "bpftrace":
            ids = [i for i, n in prog_ids().items() if i not in self.ids_before
                   and ("net_dev_queue" in n or "netif_receive" in n)]
        else:
            return
        self.kernel_ns = run_time_ns(ids)

    def __exit__(self, *exc):
        if self.name.startswith("gadgetbook"):
            self.run.stop()
            self.rows = len(self.run.result())
            self.lost = self.run.counters.lost_total
        elif self.name in ("bpftrace", "tcpdump"):
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)


def dns_server(tools: dict[str, str]) -> subprocess.Popen:
    server = subprocess.Popen([tools["dnsblast"], "serve", str(DNS_PORT)], stderr=subprocess.PIPE)
    time.sleep(0.2)
    if server.poll() is not None:
        raise RuntimeError(f"the benchmark's DNS server did not start: {server.stderr.read().decode().strip()}")
    return server


def dns_cost(tools: dict[str, str], queries: int, repeats: int) -> None:
    """Wall time per query of a client asking on loopback, untraced and traced, and the time the tracers'
    programs ran in the kernel per query (the kernel's own BPF statistics, on only for this measurement)."""
    server = dns_server(tools)
    stats_before = STATS.read_text().strip()
    STATS.write_text("1")
    try:
        names = ["untraced", "gadgetbook dns --pid", "gadgetbook dns", "bpftrace", "tcpdump"]
        names = [n for n in names if n != "bpftrace" or shutil.which("bpftrace")]
        names = [n for n in names if n != "tcpdump" or shutil.which("tcpdump")]
        times: dict[str, list[float]] = {n: [] for n in names}
        rows: dict[str, list[int]] = {}
        kernel: dict[str, list[float]] = {}
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
                    tr.measure()
                if tr.kernel_ns is not None:
                    kernel.setdefault(name, []).append(tr.kernel_ns / queries)
                if name.startswith("gadgetbook"):
                    rows.setdefault(name, []).append(tr.rows)
        base = statistics.median(times["untraced"])
        for name in names:
            med = statistics.median(times[name])
            extra = {} if name == "untraced" else {"added_ns_per_query": f"{med - base:+.0f}",
                                                  "ratio": f"{med / base:.3f}"}
            if name in rows:
                extra["rows_per_run"] = f"{statistics.median(rows[name]):.0f} of {3 * queries}"
            if name in kernel:
                extra["kernel_ns_per_query"] = f"{statistics.median(kernel[name]):.0f}"
            say(f"dns cost ({name})", ns_per_query=f"{med:.0f}", **extra)
    finally:
        STATS.write_text(stats_before)
        server.terminate()
        server.wait()


# -- 3. four gadgets into this process ------------------------------------------------------------

def investigation(tools: dict[str, str], seconds: float, ring: str) -> None:
    """execsnoop, opensnoop, tcptracer and dns on this host while workloads for each run as fast as they go."""
    import gadgetbook
    from gadgetbook.investigation import start_investigation

    server = dns_server(tools)
    loads: list[subprocess.Popen] = []
    try:
        live = start_investigation("execsnoop,opensnoop,tcptracer,dns", params={"dns": {"port": DNS_PORT}},
                                   local=True, timeout=seconds, ring_size=ring)
        c0, t0 = cpu_s(), time.monotonic()
        loads = [waiting(tools["loop"], "open", "100000000", "/dev/null"),
                 waiting(tools["dnsblast"], "ask", str(DNS_PORT), "100000000"),
                 subprocess.Popen([tools["tcpblast"], "connect", "100000000"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, text=True),
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
    say("investigation of 4 gadgets", ring=ring, seconds=f"{wall:.1f}", events_per_s=f"{total / wall:,.0f}",
        per_gadget=" ".join(f"{g}:{n / wall:,.0f}/s" for g, n in per.items()),
        lost=" ".join(f"{g}:{n}" for g, n in lost.items()),
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
    p.add_argument("--full-replay-limit", type=int, default=30_000_000,
                   help="read the dataset whole only up to this many rows (memory)")
    p.add_argument("--queries", type=int, default=20_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--ring", default="4M", help="ring buffer per gadget in the four-gadget run")
    p.add_argument("--only", nargs="*", default=["dataset", "replay", "dns", "investigation", "timeline"])
    ns = p.parse_args()
    tools = build()
    folder = BUILD / "dataset"
    try:
        if "dataset" in ns.only:
            dataset(tools, ns.events, folder, ns.tail)
        if "replay" in ns.only and folder.exists():
            replay(folder, ns.full_replay_limit)
        if "dns" in ns.only:
            dns_cost(tools, ns.queries, ns.repeats)
        if "investigation" in ns.only:
            investigation(tools, ns.seconds, ns.ring)
        if "timeline" in ns.only:
            timeline(1_000_000)
    finally:
        shutil.rmtree(BUILD, ignore_errors=True)


if __name__ == "__main__":
    main()
