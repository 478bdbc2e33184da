"""Stacks of real programs built without frame pointers, unwound in the kernel from .eh_frame; C++ names
demangled; JIT code named from perf maps; bad input said in marker frames and one warning per process."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from support import unwind

import gadgetbook

pytestmark = pytest.mark.root
CHAIN = "main;chain_outer;chain_middle;chain_leaf"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("unwind")
    o2 = unwind.build(d, "chain.c", "chain-o2", unwind.NO_FRAME_POINTERS)
    return {
        "o2": o2,
        "fp": unwind.build(d, "chain.c", "chain-fp", unwind.LEAF_WITHOUT_FRAME_POINTER),
        "cxx": unwind.build(d, "basket.cpp", "basket", unwind.NO_FRAME_POINTERS),
        "jit": unwind.build(d, "jit.c", "jit", unwind.NO_FRAME_POINTERS),
        "noeh": unwind.build(d, "chain.c", "chain-noeh", unwind.NO_UNWIND_TABLES),
        "mini": unwind.mini_debuginfo(o2, "chain-mini"),
        "dir": d,
    }


@pytest.fixture
def started():
    procs = []

    def start(*argv, seconds: float = 30.0) -> subprocess.Popen:
        p = subprocess.Popen([*map(str, argv), str(seconds)])
        procs.append(p)
        time.sleep(0.2)  # past the dynamic loader: the program's own mappings are in place
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()
        # Killed, the JIT program cannot remove its perf map: the test does.
        Path(f"/tmp/perf-{p.pid}.map").unlink(missing_ok=True)


def profile_of(pid: int, seconds: float = 3.0, **kw):
    prof = gadgetbook.run("profile", timeout=seconds, frequency=99, pid=pid, user_only=True, **kw)
    df = prof.samples[prof.samples.pid == pid]
    assert df["count"].sum() >= 20, prof.summary()  # enough samples to judge, even on a busy machine
    return prof, df


def share(df, predicate) -> float:
    return df["count"][df.user_stack.map(predicate)].sum() / df["count"].sum()


def test_no_frame_pointers_full_chain_from_main(built, started):
    p = started(built["o2"])
    prof, df = profile_of(p.pid)
    in_leaf = df[df.user_stack.str.endswith(";chain_leaf")]
    assert in_leaf["count"].sum() / df["count"].sum() >= 0.8  # where the program spends its time
    assert share(in_leaf, lambda s: s.startswith("_start;") and s.endswith(CHAIN)) >= 0.9
    # Every stack is either walked to its outermost frame or says where it stopped.
    assert df.user_stack.map(lambda s: s.startswith("_start;") or s.startswith("[truncated: ")).all()
    assert not prof.warnings


def test_leaf_without_frame_pointer_keeps_its_caller(built, started):
    p = started(built["fp"])
    _, df = profile_of(p.pid)
    in_leaf = df[df.user_stack.str.endswith(";chain_leaf")]
    assert in_leaf["count"].sum() / df["count"].sum() >= 0.8
    assert share(in_leaf, lambda s: s.endswith("chain_middle;chain_leaf")) >= 0.9
    assert share(in_leaf, lambda s: s.endswith(CHAIN)) >= 0.9


def test_cxx_names_are_demangled(built, started):
    p = started(built["cxx"])
    _, df = profile_of(p.pid)
    # gcc may clone the method ("[clone .isra.0]"): the name before the suffix is the one it was given.
    assert share(df, lambda s: "main;shop::checkout(long);shop::Basket<long>::total(long) const" in s) >= 0.8
    assert not df.user_stack.str.contains("_ZN").any()


def test_perf_map_names_jit_code(built, started):
    p = started(built["jit"])
    _, df = profile_of(p.pid)
    jit = df[df.user_stack.str.endswith(";jitted_hot_loop")]
    assert jit["count"].sum() / df["count"].sum() >= 0.8
    # Through the JIT frame's frame pointer back to main, and from there by the binary's tables.
    assert share(jit, lambda s: s.startswith("_start;") and s.endswith("main;jitted_hot_loop")) >= 0.9
    assert jit.user_locations.str.endswith("[jit]+0x0").sum() == 0  # JIT frames are not file offsets


def test_minidebuginfo_names_a_stripped_binary(built, started):
    p = started(built["mini"])
    _, df = profile_of(p.pid)
    assert share(df, lambda s: s.endswith(CHAIN)) >= 0.8


def test_binary_without_eh_frame_is_marked_and_warned(built, started):
    p = started(built["noeh"])
    prof, df = profile_of(p.pid)
    marked = df.user_stack.str.startswith("[truncated: no unwind info in chain-noeh]")
    assert df["count"][marked].sum() / df["count"].sum() >= 0.8
    assert df.user_locations[marked].str.contains("chain-noeh+0x", regex=False).all()  # where the walk stopped
    assert [w for w in prof.warnings if f"process {p.pid} (chain-noeh)" in w and "no unwind info in chain-noeh" in w]
    assert len([w for w in prof.warnings if f"process {p.pid}" in w]) == 1


def test_too_deep_stacks_are_marked(tmp_path, started):
    src = tmp_path / "deep.c"
    src.write_text("""
#include <stdlib.h>
#include <time.h>
volatile unsigned long sink;
__attribute__((noinline)) unsigned long down(int depth, double end) {
    if (depth > 0) { unsigned long r = down(depth - 1, end); sink += r; return r + 1; }
    struct timespec ts; unsigned long x = 0;
    do { for (int i = 0; i < 100000; i++) x += i ^ (x >> 3); clock_gettime(CLOCK_MONOTONIC, &ts); }
    while (ts.tv_sec + ts.tv_nsec / 1e9 < end);
    return x;
}
int main(int argc, char **argv) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int)down(300, ts.tv_sec + ts.tv_nsec / 1e9 + atof(argv[1]));
}
""")
    binary = tmp_path / "deep"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(src)], check=True)
    p = started(binary)
    _, df = profile_of(p.pid)
    marked = df.user_stack.str.startswith("[truncated: deeper than 127 frames];down;")
    assert df["count"][marked].sum() / df["count"].sum() >= 0.9


def test_a_process_that_runs_a_new_program_gets_its_tables(built):
    # A shell, then (same pid) the chain program: the kernel drops the shell's tables at the exec and the
    # new program's are loaded on its first samples.
    p = subprocess.Popen(["/bin/sh", "-c", f"sleep 0.5; exec {built['o2']} 30"])
    try:
        time.sleep(0.1)
        prof = gadgetbook.run("profile", timeout=3, frequency=99, pid=p.pid, user_only=True)
    finally:
        p.kill()
        p.wait()
    df = prof.samples
    assert prof.total >= 20, prof.summary()
    assert share(df, lambda s: s.startswith("_start;") and s.endswith(CHAIN)) >= 0.6
    assert set(prof.samples.comm) >= {"chain-o2"}
