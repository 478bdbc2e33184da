"""Python frames merged into native stacks, read from the interpreter's memory by the sampler: Debian's
python3.11 and every other CPython 3.9-3.13 this machine has, and an interpreter it cannot read."""

from __future__ import annotations

import ast
import re
import subprocess
import time

import pytest
from support import unwind

import gadgetbook

pytestmark = pytest.mark.root
NESTED = unwind.HERE / "nested.py"
PYTHONS = unwind.pythons()
LINES = {f.name: f.lineno for f in ast.parse(NESTED.read_text()).body if isinstance(f, ast.FunctionDef)}
# outer's frame, then inner's further in (3.9 and 3.10 have the interpreter's C calls between them),
# each named by its qualified name, file and the line where the function starts.
IN_ORDER = re.compile(rf"(?:^|;)outer \(nested\.py:{LINES['outer']}\);(?:[^;]*;)*?"
                      rf"inner \(nested\.py:{LINES['inner']}\)")


def profile_python(path: str, script, seconds: float = 3.0, **params):
    """(profile, its samples, the pid) of `path script` running while it is profiled, then stopped."""
    p = subprocess.Popen([path, str(script), "30"])
    try:
        time.sleep(0.3)
        prof = gadgetbook.run("profile", timeout=seconds, frequency=99, pid=p.pid, user_only=True, **params)
    finally:
        p.kill()
        p.wait()
    df = prof.samples[prof.samples.pid == p.pid]
    assert df["count"].sum() >= 10, prof.summary()
    return prof, df, p.pid


def in_order(df) -> float:
    return df["count"][df.user_stack.str.contains(IN_ORDER)].sum() / df["count"].sum()


def test_debian_python_has_its_functions_in_order():
    prof, df, _ = profile_python(unwind.DEBIAN_PYTHON, NESTED)
    assert in_order(df) >= 0.8, df[["user_stack", "count"]].head().to_string()
    # Merged where the eval loop runs: native frames outside, Python frames in place of the loop.
    top = df.sort_values("count").iloc[-1].user_stack
    assert top.startswith("_start;") and ";PyEval_EvalCode;<module> (nested.py:1);outer (" in top
    assert "_PyEval_EvalFrameDefault;outer" not in top
    locations = df.sort_values("count").iloc[-1].user_locations.split(";")
    assert f"{NESTED}:{LINES['outer']}" in locations  # outer's file and first line
    assert not prof.warnings


@pytest.mark.parametrize("version", ["3.9", "3.10", "3.11", "3.12", "3.13"])
def test_each_cpython_version(version):
    if version not in PYTHONS:
        pytest.skip(f"no CPython {version} on this machine (Debian 12 ships 3.11; others come from pyenv)")
    _, df, _ = profile_python(PYTHONS[version], NESTED)
    assert in_order(df) >= 0.8, df[["user_stack", "count"]].head().to_string()


def test_deep_python_recursion_is_marked(tmp_path):
    script = tmp_path / "deep.py"
    script.write_text("import sys, time\nsys.setrecursionlimit(10000)\n"
                      "def down(n, end):\n    if n:\n        return down(n - 1, end)\n"
                      "    while time.monotonic() < end:\n        sum(range(1000))\n"
                      "down(300, time.monotonic() + float(sys.argv[1]))\n")
    _, df, _ = profile_python(unwind.DEBIAN_PYTHON, script)
    marked = df.user_stack.str.contains("[truncated: more than 128 Python frames];down (deep.py:3)", regex=False)
    assert df["count"][marked].sum() / df["count"].sum() >= 0.8


def test_unsupported_interpreter_is_said_once_and_the_run_goes_on():
    old = [v for v in ("3.8", "3.7") if v in PYTHONS or unwind.pythons_any(v)]
    if not old:
        pytest.skip("no CPython older than 3.9 on this machine")
    path = PYTHONS.get(old[0]) or unwind.pythons_any(old[0])
    prof, df, pid = profile_python(path, NESTED)
    mine = [w for w in prof.warnings if f"process {pid} " in w]
    assert len(mine) == 1 and f"Python {old[0]}" in mine[0] and "cannot read" in mine[0]
    assert df.user_stack.str.contains("_PyEval_EvalFrameDefault").mean() >= 0.8  # native frames still
    assert not df.user_stack.str.contains("nested.py").any()


def test_no_python_leaves_the_interpreter_frames():
    _, df, _ = profile_python(unwind.DEBIAN_PYTHON, NESTED, seconds=2, no_python=True)
    assert not df.user_stack.str.contains("nested.py").any()
    assert df.user_stack.str.contains("_PyEval_EvalFrameDefault").mean() >= 0.8
