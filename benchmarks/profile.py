"""Profile benchmark: sampling overhead on a CPU-bound program, symbolization time, flame graph times.

Run as root: `.venv/bin/python benchmarks/profile.py`. Prints one line per measurement.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
BUILD = Path(tempfile.mkdtemp(prefix="gadgetbook-bench-profile-"))


def spin_binary() -> str:
    out = BUILD / "spin"
    subprocess.run(["gcc", "-O1", "-fno-omit-frame-pointer", "-fno-inline", "-o", out, HERE / "spin.c"], check=True)
    return str(out)


def spin(binary: str, rounds: int) -> float:
    return float(subprocess.run([binary, str(rounds)], capture_output=True, text=True, check=True).stdout)


def _program_stats(run) -> tuple[int, int]:
    """(run_cnt, run_time_ns) of the profile's sampling program, from bpftool."""
    src = run.sources[0]
    fd = src.session.obj.program_fd("do_sample")
    info = os.readlink(f"/proc/self/fd/{fd}")  # anon_inode:bpf-prog
    assert "bpf-prog" in info
    with open(f"/proc/self/fdinfo/{fd}") as f:
        prog_id = next(int(line.split()[1]) for line in f if line.startswith("prog_id:"))
    out = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)], capture_output=True, text=True,
                         check=True).stdout
    doc = json.loads(out)
    return int(doc.get("run_cnt", 0)), int(doc.get("run_time_ns", 0))


def overhead(rounds: int, repeats: int) -> None:
    """Wall time of the same work unprofiled and with the whole host sampled, interleaved so drift in
    the VM hits both alike; the fastest run of each stands for it (other load only adds time). The
    sampler's own time per sample comes from the kernel's BPF run-time statistics, switched on
    through a BPF_ENABLE_STATS fd that this process holds (they go off again when it closes)."""
    import gadgetbook
    from gadgetbook.kernel import libbpf

    enable_stats = libbpf._fn("bpf_enable_stats", ctypes.c_int, ctypes.c_int)
    stats_fd = enable_stats(0)  # BPF_STATS_RUN_TIME
    binary = spin_binary()
    spin(binary, rounds // 4)  # warm caches and the CPU's clock
    try:
        for freq in (49, 99):
            plain, profiled, per_sample = [], [], []
            for _ in range(repeats):
                plain.append(spin(binary, rounds))
                run = gadgetbook.start("profile", frequency=freq)
                try:
                    profiled.append(spin(binary, rounds))
                    if stats_fd >= 0:
                        cnt, ns = _program_stats(run)
                        if cnt:
                            per_sample.append(ns / cnt)
                finally:
                    run.stop()
            base, prof = min(plain), min(profiled)
            bpf_ns = statistics.median(per_sample) if per_sample else float("nan")
            print(f"overhead at {freq} Hz: unprofiled {base:.3f} s, profiled {prof:.3f} s (fastest of {repeats}), "
                  f"ratio {prof / base:.4f} ({(prof / base - 1) * 100:+.2f}%); sampler {bpf_ns:,.0f} ns per sample "
                  f"= {freq * bpf_ns / 1e7:.4f}% of each CPU; load average {os.getloadavg()[0]:.1f}")
    finally:
        if stats_fd >= 0:
            os.close(stats_fd)


def symbolization(n_stacks: int, depth: int) -> None:
    """Name n_stacks distinct user+kernel stacks of random addresses inside this process's mapped code."""
    from gadgetbook.catalog import get
    from gadgetbook.symbols.kallsyms import KernelSymbols
    from gadgetbook.symbols.process import UserSymbols
    from gadgetbook.symbols.stacks import StackNamer

    rng = np.random.default_rng(7)
    t0 = time.perf_counter()
    user = UserSymbols()
    user.snapshot(os.getpid())
    t1 = time.perf_counter()
    kernel = KernelSymbols()
    t2 = time.perf_counter()
    maps = [m for m in user.processes[os.getpid()].mappings if m.key is not None]
    spans = np.array([(m.start, m.end) for m in maps], dtype=np.uint64)
    pick = rng.integers(0, len(spans), size=(n_stacks, depth))
    lo, hi = spans[pick, 0], spans[pick, 1]
    uaddr = lo + (rng.random((n_stacks, depth)) * (hi - lo)).astype(np.uint64)
    kaddrs = kernel.addresses[kernel.addresses > 0]
    kaddr = kaddrs[rng.integers(0, len(kaddrs), size=(n_stacks, depth // 2))] + np.uint64(4)
    keys = np.zeros(n_stacks, dtype=get("profile").event_dtype)
    keys["pid"] = os.getpid()
    keys["user_stack_id"] = np.arange(n_stacks)
    keys["kernel_stack_id"] = n_stacks + np.arange(n_stacks)
    keys["comm"] = b"python3"
    stacks = {i: uaddr[i] for i in range(n_stacks)} | {n_stacks + i: kaddr[i] for i in range(n_stacks)}
    t3 = time.perf_counter()
    rows = StackNamer(user, kernel).rows(keys, np.ones(n_stacks, dtype=np.uint64), stacks)
    t4 = time.perf_counter()
    named = sum(s.count("[unknown]") for s in rows["user_stack"])
    print(f"symbolization of {n_stacks:,} distinct stacks ({depth} user + {depth // 2} kernel frames each): "
          f"{t4 - t3:.3f} s; reading this process's maps and {len(user.elf._files)} ELF files {t1 - t0:.3f} s; "
          f"kallsyms {t2 - t1:.3f} s; {named / (n_stacks * depth):.0%} of user frames unnamed "
          "(random addresses in stripped libraries)")


def synthetic_profile(n: int):
    """n distinct stacks shaped like a real program's: shared outer frames, varied inner ones."""
    from gadgetbook.frames.profile import Profile

    rng = np.random.default_rng(3)
    funcs = np.array([f"module{i % 40}::function_{i}" for i in range(20_000)], dtype=object)
    users, kernels = [], []
    for k in rng.integers(6, 40, size=n):
        # Outer frames come from a small set, inner ones from a wide one: trees, like real profiles.
        idx = [int(rng.integers(0, 5 * (d + 1) ** 2)) % len(funcs) for d in range(int(k))]
        users.append(";".join(funcs[idx]))
        kernels.append("entry_SYSCALL_64;do_syscall_64;x64_sys_call" if rng.random() < 0.2 else "")
    df = pd.DataFrame({"pid": rng.integers(1, 50, size=n).astype(np.uint32),
                       "comm": pd.Categorical([f"app{p % 5}" for p in range(n)]),
                       "container": pd.Categorical([""] * n),
                       "user_stack": users, "kernel_stack": kernels,
                       "count": rng.integers(1, 20, size=n)})
    df = df.drop_duplicates(["pid", "comm", "user_stack", "kernel_stack"])
    df.attrs.update(gadget="profile", seconds=30.0, params={"frequency": 49}, targets="synthetic", lost={})
    return Profile(df)


def rendering(n: int) -> None:
    prof = synthetic_profile(n)
    prof.tree()  # warm: imports, pandas' hash tables
    t0 = time.perf_counter()
    tree = prof.tree()
    t1 = time.perf_counter()
    from gadgetbook.views.flamegraph import FlameGraph

    widget = FlameGraph(tree)
    t2 = time.perf_counter()
    widget.search = "function_1"
    t3 = time.perf_counter()
    widget.zoom_to(int(np.argsort(tree.value)[-3]))
    t4 = time.perf_counter()
    print(f"interactive flame graph, {len(prof.samples):,} distinct stacks, {len(tree.frame):,} tree nodes: "
          f"merge into a tree {t1 - t0:.3f} s + widget payload {t2 - t1:.3f} s = {t2 - t0:.3f} s; "
          f"message {widget.message_bytes / 1024:.0f} KiB ({len(widget.nodes) // 36:,} frames drawn); "
          f"search {t3 - t2:.3f} s; zoom {t4 - t3:.3f} s")
    t5 = time.perf_counter()
    image = prof.flamegraph_image()
    t6 = time.perf_counter()
    from gadgetbook.views.flameimage import render_png

    t7 = time.perf_counter()
    render_png(tree)
    t8 = time.perf_counter()
    print(f"static flame graph, {len(prof.samples):,} distinct stacks: {t6 - t5:.3f} s with the tree merge, "
          f"{t8 - t7:.3f} s drawing alone; PNG {len(image.png) / 1024:.0f} KiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=600, help="work per overhead run (~1 s for 600 here)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--stacks", type=int, default=10_000)
    ap.add_argument("--render-stacks", type=int, default=100_000)
    ap.add_argument("--skip-overhead", action="store_true")
    args = ap.parse_args()
    if not args.skip_overhead:
        overhead(args.rounds, args.repeats)
    symbolization(args.stacks, 16)
    rendering(args.render_stacks)


if __name__ == "__main__":
    main()
