"""traceloop benchmark: what a syscall costs with traceloop loaded, for a process it records and for one it
does not, next to the bare cost of the same hooks (empty programs) and bpftrace, in the same run.

Run as root: `.venv/bin/python benchmarks/traceloop.py`. A getppid(2) loop (the cheapest syscall) runs on
the host (not recorded) and inside a recorded mount namespace; each configuration is measured in rounds,
interleaved, and the median is printed. The loop counts its own CPU time (on a shared machine, time spent
waiting for a CPU would swamp the differences). "cost" is ns per syscall above the untraced loop (enter +
exit).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from engine import BUILD, build, go  # noqa: E402

HOOKS = {"tp_btf": ("tp_btf_sys_enter", "tp_btf_sys_exit"), "raw_tp": ("raw_tp_sys_enter", "raw_tp_sys_exit"),
         "tp": ("tp_sys_enter", "tp_sys_exit")}


def groups(hook: str):
    """Hook groups that take `hook`'s programs (each group's first choice) and leave the others unloaded."""
    from gadgetbook.kernel.loader import HookGroup

    others = [h for h in HOOKS if h != hook]
    return [HookGroup((HOOKS[hook][i], *(HOOKS[o][i] for o in others))) for i in range(2)]


def empty_object() -> str:
    obj = BUILD / "empty_syscalls.bpf.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I", ROOT / "bpf/.build",
                    "-c", HERE / "bpf/empty_syscalls.bpf.c", "-o", obj], check=True)
    return str(obj)


def loop_ns(loop: str, n: int, inside: int | None = None) -> float:
    """CPU ns per getppid, on the host or inside the mount namespace of process `inside`."""
    argv = [loop, "getppid", str(n)] if inside is None else ["nsenter", "-t", str(inside), "-m", loop, "getppid",
                                                              str(n)]
    w = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return go(w)[1]  # CPU time: waiting for a CPU on a busy machine is left out


class Empty:
    def __init__(self, obj: str, hook: str) -> None:
        from gadgetbook.kernel.loader import BpfObject, LoadPlan

        self.o = BpfObject(obj, LoadPlan(groups=groups(hook)))
        assert sorted(self.o.attached) == sorted(HOOKS[hook]), self.o.attached

    def close(self) -> None:
        self.o.close()


class Traceloop:
    def __init__(self, hook: str, mntns: int) -> None:
        from gadgetbook import catalog
        from gadgetbook.kinds import kind_of
        from gadgetbook.kinds.recorder import KernelRecorder

        spec = catalog.get("traceloop")
        self.k = KernelRecorder(spec, kind_of(spec).settings({"entries": 4096}), births=True, prefer=hook)
        assert set(HOOKS[hook]) <= set(self.k.obj.attached) and len(self.k.obj.attached) <= 3, self.k.obj.attached
        self.slot = self.k.add(mntns)

    def close(self) -> None:
        self.k.close()


class Bpftrace:
    """bpftrace on the same two tracepoints with a filter that rejects every process: its unrecorded path."""

    def __init__(self) -> None:
        self.p = subprocess.Popen(["bpftrace", "-e", "tracepoint:raw_syscalls:sys_enter,"
                                   "tracepoint:raw_syscalls:sys_exit /pid == 1/ { @[probe] = count(); }"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.p.stdout.readline()  # "Attaching 2 probes..."
        time.sleep(0.3)

    def close(self) -> None:
        self.p.terminate()
        self.p.communicate(timeout=20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    loop, _ = build()
    obj = empty_object()
    # A mount namespace to record: a sleeping process in a namespace of its own; the loop joins it.
    sleeper = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "3600"])
    time.sleep(0.2)
    mntns = os.stat(f"/proc/{sleeper.pid}/ns/mnt").st_ino
    print(f"host: {os.uname().release}, {os.cpu_count()} CPUs; getppid loop of {args.iterations:,}, "
          f"{args.rounds} rounds, median")
    configs: list[tuple[str, object, int | None]] = [
        ("untraced (host)", None, None),
        ("untraced (in the namespace)", None, sleeper.pid),
    ]
    for hook in HOOKS:
        configs += [(f"empty programs, {hook} (bare hook)", ("empty", hook), None),
                    (f"traceloop {hook}, process not recorded", ("traceloop", hook), None),
                    (f"traceloop {hook}, process recorded", ("traceloop", hook), sleeper.pid)]
    if shutil.which("bpftrace"):
        configs.append(("bpftrace, same tracepoints, filter rejects", ("bpftrace", ""), None))
    results: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    try:
        for _ in range(args.rounds):
            for name, what, inside in configs:
                tool = None
                if what is not None:
                    kind, hook = what
                    tool = (Empty(obj, hook) if kind == "empty" else Traceloop(hook, mntns) if kind == "traceloop"
                            else Bpftrace())
                try:
                    results[name].append(loop_ns(loop, args.iterations, inside))
                finally:
                    if tool is not None:
                        tool.close()
    finally:
        sleeper.kill()
        sleeper.wait()
        shutil.rmtree(BUILD, ignore_errors=True)
    med = {name: statistics.median(v) for name, v in results.items()}
    base_host, base_ns = med["untraced (host)"], med["untraced (in the namespace)"]
    for name, _, inside in configs:
        base = base_ns if inside else base_host
        print(f"{name:<46} {med[name]:8.1f} ns/iter   cost {med[name] - base:7.1f} ns/syscall")
    for hook in HOOKS:
        bare = med[f"empty programs, {hook} (bare hook)"] - base_host
        not_rec = med[f"traceloop {hook}, process not recorded"] - base_host
        rec = med[f"traceloop {hook}, process recorded"] - base_ns
        print(f"{hook:<10} not recorded / bare hook = {not_rec / bare:5.2f}   recorded / bare hook = {rec / bare:5.2f}")


if __name__ == "__main__":
    main()
