"""Profile benchmark: what sampling with unwinding costs a busy program (49 and 99 Hz, host-wide), the
sampler's time per sample next to the designs it did not take (frame pointers only; a copy of the user
stack per sample, as perf --call-graph dwarf does), memory for unwind tables per process, how soon a new
process's stacks are whole, symbolization, and the time to prepare the views for 100,000 stacks.
perf (and py-spy, when installed) run on the same work in the same run, as peers.

Run as root: `.venv/bin/python benchmarks/profile.py`. Prints one line per measurement.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = Path(tempfile.mkdtemp(prefix="gadgetbook-bench-profile-"))
NESTED = ROOT / "tests/support/unwind/nested.py"
DEBIAN_PYTHON = "/usr/bin/python3.11"


def spin_binary() -> str:
    """The busy program, built as distributions build: -O2, no frame pointers (so unwinding is by CFI)."""
    out = BUILD / "spin"
    subprocess.run(["gcc", "-O2", "-fno-inline", "-o", out, HERE / "spin.c"], check=True)
    return str(out)


def spin(binary: str, rounds: int) -> float:
    return float(subprocess.run([binary, str(rounds)], capture_output=True, text=True, check=True).stdout)


def prog_stats(fd: int) -> tuple[int, int]:
    """(run_cnt, run_time_ns) of a loaded BPF program, from bpftool."""
    with open(f"/proc/self/fdinfo/{fd}") as f:
        prog_id = next(int(line.split()[1]) for line in f if line.startswith("prog_id:"))
    out = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)], capture_output=True, text=True,
                         check=True).stdout
    doc = json.loads(out)
    return int(doc.get("run_cnt", 0)), int(doc.get("run_time_ns", 0))


class BpfStats:
    """BPF run-time statistics on while held (a BPF_ENABLE_STATS fd; they go off when it closes)."""

    def __enter__(self) -> BpfStats:
        from gadgetbook.kernel import libbpf

        self.fd = libbpf._fn("bpf_enable_stats", ctypes.c_int, ctypes.c_int)(0)  # BPF_STATS_RUN_TIME
        return self

    def __exit__(self, *exc) -> None:
        if self.fd >= 0:
            os.close(self.fd)


def timed(argv: list[str], binary: str, rounds: int) -> tuple[float, float]:
    """(the busy program's time, the tool's CPU seconds meanwhile) with another tool running beside it."""
    tool = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # its start-up is not what is measured
        before = _cpu_of(tool.pid)
        took = spin(binary, rounds)
        return took, _cpu_of(tool.pid) - before
    finally:
        tool.send_signal(2)  # SIGINT: perf writes its file and exits
        try:
            tool.wait(timeout=60)
        except subprocess.TimeoutExpired:
            tool.kill()
            tool.wait()


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads, so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def overhead(rounds: int, repeats: int) -> None:
    """The same work unprofiled and with the whole host sampled, interleaved so drift in the VM hits all
    alike; the fastest run of each stands for it (other load only adds time). Wall-time ratios drown in
    noise on a shared machine, so what each profiler itself spends is measured too: the kernel's time in
    the sampler (BPF statistics), and the CPU time of the profiler's own process while it runs."""
    import gadgetbook

    binary = spin_binary()
    spin(binary, rounds // 4)  # warm caches and the CPU's clock
    perf = shutil.which("perf")
    with BpfStats():
        for freq in (49, 99):
            plain, ours, per_sample, own_cpu = [], [], [], []
            peers: dict[str, list[tuple[float, float]]] = {}
            for _ in range(repeats):
                plain.append(spin(binary, rounds))
                run = gadgetbook.start("profile", frequency=freq)
                try:
                    time.sleep(1.0)  # past the first registrations, as for the peers' start-up
                    cpu0 = time.process_time()
                    took = spin(binary, rounds)
                    own_cpu.append((time.process_time() - cpu0) / took)
                    ours.append(took)
                    cnt, ns = prog_stats(run.sources[0].obj.program_fd("do_sample"))
                    if cnt:
                        per_sample.append(ns / cnt)
                finally:
                    run.stop()
                if perf:
                    for label, extra in (("perf --call-graph dwarf", ["--call-graph", "dwarf"]),
                                         ("perf -g (frame pointers)", ["-g"])):
                        out = BUILD / "perf.data"
                        peers.setdefault(label, []).append(timed(
                            [perf, "record", "-a", "-F", str(freq), *extra, "-o", str(out)], binary, rounds))
                        out.unlink(missing_ok=True)
            base = min(plain)
            bpf_ns = statistics.median(per_sample) if per_sample else float("nan")
            print(f"overhead at {freq} Hz, whole host, unwinding on (-O2, no frame pointers): unprofiled "
                  f"{base:.3f} s, gadgetbook {min(ours):.3f} s ({(min(ours) / base - 1) * 100:+.2f}%; fastest of "
                  f"{repeats}); sampler {bpf_ns:,.0f} ns per sample (all processes) = "
                  f"{freq * bpf_ns / 1e7:.4f}% of each CPU; gadgetbook's process "
                  f"{statistics.median(own_cpu) * 100:.1f}% of one CPU")
            for label, runs in peers.items():
                best = min(t for t, _ in runs)
                cpu = statistics.median(c / t for t, c in runs)
                print(f"  peer {label}: {best:.3f} s ({(best / base - 1) * 100:+.2f}%); its process "
                      f"{cpu * 100:.1f}% of one CPU")
            print(f"  load average {os.getloadavg()[0]:.1f} (other work on this machine adds noise to wall times)")


def designs(seconds: float) -> None:
    """The sampler's own time per sample of the target (kernel BPF statistics) for: this gadget (in-kernel
    CFI unwinding, Python frames, kernel stack), frame pointers only, and copies of up to 8, 16 and 32 KiB
    of user stack (the copy design; its unwinding then happens on the user side). Every CPU's sampler
    also runs for other processes and discards them at once: that cost is measured with a filter that
    matches no process and taken out."""
    import gadgetbook
    from gadgetbook.kernel import perf
    from gadgetbook.kernel.loader import BpfObject, LoadPlan

    obj_path = BUILD / "stackcopy.bpf.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I", ROOT / "bpf/include",
                    "-I", ROOT / "bpf/.build", "-c", HERE / "bpf/stackcopy.bpf.c", "-o", obj_path], check=True)

    def copy_design(prog: str, copy: int, pid: int) -> tuple[int, int, int, int]:
        """(runs, ns, samples kept, bytes copied) of one stackcopy program filtered on pid."""
        plan = LoadPlan(rodata={"copy_bytes": copy, "gadget_filter_pid": pid}, max_entries={"gadget_events": 1 << 24})
        obj = BpfObject(str(obj_path), plan, attach=False)
        try:
            for cpu in perf.online_cpus():
                obj.attach_perf_event(prog, perf.open_cpu_clock(cpu, 99))
            time.sleep(seconds)
            cnt, ns = prog_stats(obj.program_fd(prog))
            return cnt, ns, _bss_u64(obj, "kept"), _bss_u64(obj, "copied_bytes")
        finally:
            obj.close()

    with BpfStats():
        rows = []
        # A Python program: a C stack of some depth under the interpreter, like real services.
        w = subprocess.Popen([DEBIAN_PYTHON, str(NESTED), "600"], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            cnt, ns, _, _ = copy_design("fp_stack", 0, 1 << 30)  # no such process: the cost of a discard
            discard = ns / max(cnt, 1)
            run = gadgetbook.start("profile", frequency=99, pid=w.pid)
            time.sleep(seconds)
            cnt, ns = prog_stats(run.sources[0].obj.program_fd("do_sample"))
            run.stop()
            kept = int(run.result().total)
            rec = run.sources[0]._ring.event.itemsize
            rows.append(("gadgetbook: CFI unwinding + Python frames in the kernel, kernel stack",
                         (ns - discard * (cnt - kept)) / max(kept, 1), kept, rec))
            for label, prog, copy in (("frame pointers only (bpf_get_stackid)", "fp_stack", 0),
                                      ("copy up to 8 KiB of user stack", "copy_stack", 8192),
                                      ("copy up to 16 KiB of user stack", "copy_stack", 16384),
                                      ("copy up to 32 KiB of user stack", "copy_stack", 32768)):
                cnt, ns, kept, copied = copy_design(prog, copy, w.pid)
                per = copied // max(kept, 1)
                rows.append((label + (f" (to the stack's end: {per:,} bytes on average)" if copy else ""),
                             (ns - discard * (cnt - kept)) / max(kept, 1), kept, 64 + (per if copy else 0)))
        finally:
            w.kill()
            w.wait()
    print(f"design: a sample of another process, discarded at once: {discard:,.0f} ns")
    for label, ns, kept, size in rows:
        print(f"design: {label}: {ns:,.0f} ns per sample of the target in the kernel ({kept} samples), "
              f"{size:,} bytes per sample through the ring buffer")
    peer_user_side()


def _bss_u64(obj, name: str) -> int:
    """A u64 global of a loaded object (its .bss map), read whole."""
    from gadgetbook.kernel import libbpf

    value = (ctypes.c_uint8 * 4096)()
    bss = next(m for m in obj._maps() if libbpf.map_name(m).decode().endswith(".bss"))
    if libbpf.map_lookup_elem(libbpf.map_fd(bss), ctypes.byref(ctypes.c_uint32(0)), value):
        return 0
    offset = obj.btf.datasec(".bss")[name][0]
    return int.from_bytes(bytes(value[offset:offset + 8]), "little")


def peer_user_side() -> None:
    """The copy design's other half, measured on perf (C, libdw/libunwind): unwinding copied stacks at
    report time, per sample."""
    perf = shutil.which("perf")
    if not perf:
        print("peer perf: not installed")
        return
    binary = spin_binary()
    data = BUILD / "dwarf.data"
    subprocess.run([perf, "record", "-F", "99", "--call-graph", "dwarf", "-o", str(data), binary, "3000"],
                   capture_output=True, check=True)
    t0 = time.perf_counter()
    out = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--no-children"], capture_output=True,
                         text=True).stdout
    seconds = time.perf_counter() - t0
    count = next((line.split()[2] for line in out.splitlines() if line.startswith("# Samples:")), "0")
    samples = int(float(count[:-1]) * 1000) if count.endswith("K") else int(count)
    size = data.stat().st_size
    print(f"peer perf --call-graph dwarf: {samples:,} samples, {size / max(samples, 1):,.0f} bytes per sample "
          f"on disk, report (user-side unwinding and naming) {seconds * 1e6 / max(samples, 1):,.0f} us per sample")
    data.unlink(missing_ok=True)


def memory_and_first_stack() -> None:
    """Unwind table bytes per process (the tables are shared by processes that map the same files), and
    how long until a new process's stacks are whole: tables decoded from .eh_frame (cold) or read back
    from the cache (warm)."""
    from gadgetbook.catalog import get
    from gadgetbook.kernel.gadget import load_gadget
    from gadgetbook.symbols.cfi import UnwindTables
    from gadgetbook.symbols.process import UserSymbols
    from gadgetbook.symbols.unwinding import PROCESS, KernelUnwinding

    spec = get("profile")
    binary = spin_binary()
    for label, argv in (("C program (-O2)", [binary, "100000"]),
                        ("Debian python3.11", [DEBIAN_PYTHON, str(NESTED), "60"])):
        w = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            for cache in ("cold", "warm"):
                cache_dir = BUILD / "unwind-cache"
                if cache == "cold":
                    shutil.rmtree(cache_dir, ignore_errors=True)
                obj = load_gadget(str(spec.object_path), spec.hooks, {}, pid=w.pid)
                try:
                    unw = KernelUnwinding(obj, UserSymbols(), UnwindTables(cache_dir))
                    t0 = time.perf_counter()
                    unw.register(w.pid)
                    took = time.perf_counter() - t0
                finally:
                    obj.close()
                print(f"unwind tables for a {label}: {unw.table_rows:,} rows = {unw.table_bytes / 1024:,.0f} KiB "
                      f"in {len(unw._slots)} files + {PROCESS.itemsize / 1024:.0f} KiB of mappings; ready "
                      f"{took:.2f} s after its first sample ({cache} cache)")
        finally:
            w.kill()
            w.wait()


def symbolization(n_stacks: int, depth: int) -> None:
    """Name n_stacks distinct user+kernel stacks of random addresses inside this process's mapped code."""
    from gadgetbook.symbols.kallsyms import KernelSymbols
    from gadgetbook.symbols.process import UserSymbols
    from gadgetbook.symbols.stacks import SampleStacks, StackNamer

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
    stacks = SampleStacks(127, 127, 128)
    stacks.pid = [os.getpid()] * n_stacks
    stacks.user = list(uaddr)
    stacks.kernel = list(kaddr)
    stacks.py = [np.zeros(0, np.uint64)] * n_stacks
    stacks.user_end = [0] * n_stacks
    stacks.py_state = [0] * n_stacks
    t3 = time.perf_counter()
    named = StackNamer(user, kernel).name(stacks)
    t4 = time.perf_counter()
    unnamed = sum(s.count("[unknown]") for s in named["user_stack"])
    print(f"symbolization of {n_stacks:,} distinct stacks ({depth} user + {depth // 2} kernel frames each): "
          f"{t4 - t3:.3f} s; reading this process's maps and {len(user.elf._files)} ELF files {t1 - t0:.3f} s; "
          f"kallsyms {t2 - t1:.3f} s; {unnamed / (n_stacks * depth):.0%} of user frames unnamed "
          "(random addresses in stripped libraries)")


def synthetic_profile(n: int, seconds: float = 30.0):
    """n distinct stacks shaped like a real program's (shared outer frames, varied inner ones), each with
    its samples at one time across a run of `seconds`."""

    rng = np.random.default_rng(3)
    funcs = np.array([f"module{i % 40}::function_{i}" for i in range(20_000)], dtype=object)
    users, kernels = [], []
    for k in rng.integers(6, 40, size=n):
        # Outer frames come from a small set, inner ones from a wide one: trees, like real profiles.
        idx = [int(rng.integers(0, 5 * (d + 1) ** 2)) % len(funcs) for d in range(int(k))]
        users.append(";".join(funcs[idx]))
        kernels.append("entry_SYSCALL_64;do_syscall_64;x64_sys_call" if rng.random() < 0.2 else "")
    t0 = pd.Timestamp("2026-01-01")
    df = pd.DataFrame({"timestamp": t0 + pd.to_timedelta(rng.random(n) * seconds, unit="s"),
                       "node": "bench", "namespace": "", "pod": "", "container": "",
                       "pid": rng.integers(1, 50, size=n).astype(np.uint32), "tid": np.uint32(1),
                       "comm": pd.Categorical([f"app{p % 5}" for p in range(n)]),
                       "user_stack": pd.Categorical(users), "kernel_stack": pd.Categorical(kernels),
                       "count": rng.integers(1, 20, size=n), "user_addresses": "", "kernel_addresses": "",
                       "user_locations": ""})
    df = df.drop_duplicates(["pid", "comm", "user_stack", "kernel_stack"])
    df.attrs.update(gadget="profile", seconds=seconds, params={"frequency": 49}, targets="synthetic", lost={})
    return df


def rendering(n: int) -> None:
    from gadgetbook.frames.profile import Profile
    from gadgetbook.views.flameimage import render_png

    df = synthetic_profile(n)
    Profile(df).tree()  # warm: imports, pandas' hash tables
    t0 = time.perf_counter()
    prof = Profile(df)
    t1 = time.perf_counter()
    widget = prof.flamegraph(fallback=False)
    t2 = time.perf_counter()
    tree = widget.base
    png = render_png(tree)
    t3 = time.perf_counter()
    widget.search = "function_1"
    t4 = time.perf_counter()
    widget.zoom_to(int(np.argsort(tree.value)[-3]))
    t5 = time.perf_counter()
    widget.span = [5.0, 10.0]
    t6 = time.perf_counter()
    widget.show_sandwich("module1::function_1")
    t7 = time.perf_counter()
    print(f"interactive flame graph, {len(prof.samples):,} distinct stacks, {len(tree.frame):,} tree nodes: "
          f"ready in {t2 - t0:.3f} s (samples and timeline {t1 - t0:.3f} s, tree + widget {t2 - t1:.3f} s); "
          f"message {widget.message_bytes / 1024:.0f} KiB; static copy (PNG {len(png.png) / 1024:.0f} KiB) "
          f"{t3 - t2:.3f} s more; then search {t4 - t3:.3f} s, zoom {t5 - t4:.3f} s, "
          f"a 5-second span {t6 - t5:.3f} s, a sandwich {t7 - t6:.3f} s")
    cpu0 = time.process_time()
    Profile(df).flamegraph(fallback=False)
    print(f"  the same, CPU time of this process alone: {time.process_time() - cpu0:.3f} s "
          f"(load average {os.getloadavg()[0]:.1f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=600, help="work per overhead run (~1 s for 600 here)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--stacks", type=int, default=10_000)
    ap.add_argument("--render-stacks", type=int, default=100_000)
    ap.add_argument("--skip-overhead", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    try:
        if not args.skip_overhead:
            overhead(args.rounds, args.repeats)
            designs(3.0)
            memory_and_first_stack()
        symbolization(args.stacks, 16)
        rendering(args.render_stacks)
    finally:
        shutil.rmtree(BUILD, ignore_errors=True)


if __name__ == "__main__":
    main()
