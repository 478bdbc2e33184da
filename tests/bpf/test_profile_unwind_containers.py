"""Unwinding and Python frames for processes in podman containers: tables and symbols are read through
the host's /proc, perf maps and debug files are found inside the container's own root."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
from support import unwind
from support.podman import running
from support.workloads import marker

import gadgetbook

pytestmark = [pytest.mark.root, pytest.mark.containers]


@pytest.fixture
def app_root(rootfs, tmp_path):
    """A private copy of the busybox root with an /app folder (and /lib links for a host /usr mounted in)."""
    root = tmp_path / "root"
    shutil.copytree(rootfs, root, symlinks=True)
    (root / "app").mkdir()
    (root / "usr").mkdir(exist_ok=True)
    for link, target in (("lib", "usr/lib"), ("lib64", "usr/lib64")):
        if not (root / link).exists():
            (root / link).symlink_to(target)
    return root


def profile_container(selector: str, seconds: float = 3.0):
    prof = gadgetbook.run("profile", timeout=seconds, frequency=99, selector=selector, user_only=True)
    assert prof.total >= 20, prof.summary()
    return prof, prof.samples


def test_python_in_a_container_has_its_functions(app_root):
    shutil.copy(unwind.HERE / "nested.py", app_root / "app" / "nested.py")
    lines = {f.name: f.lineno for f in ast.parse((unwind.HERE / "nested.py").read_text()).body
             if isinstance(f, ast.FunctionDef)}
    tag = marker("py")
    # Debian's python3.11 from this host's /usr, read-only, in the container's own mount namespace.
    with running(str(app_root), (f"py-{tag}", {"gadgetbook-test": tag},
                                 "exec /usr/bin/python3.11 /app/nested.py 60"),
                 volumes=("/usr:/usr:ro",)) as (box,):
        prof, df = profile_container(f"gadgetbook-test={tag}")
    assert set(df.container) == {box.name} and set(df.pid) == {box.pid}
    pattern = (rf"outer \(nested\.py:{lines['outer']}\);(?:[^;]*;)*?inner \(nested\.py:{lines['inner']}\)")
    ok = df["count"][df.user_stack.str.contains(pattern)].sum() / df["count"].sum()
    assert ok >= 0.8, df[["user_stack", "count"]].head().to_string()
    assert df.user_locations.str.contains("/app/nested.py:", regex=False).any()  # the path inside the container


def test_jit_in_a_container_is_named_from_its_perf_map(app_root, tmp_path):
    jit = unwind.build(tmp_path, "jit.c", "jit", unwind.NO_FRAME_POINTERS, static=True)
    shutil.copy(jit, app_root / "app" / "jit")
    tag = marker("jit")
    with running(str(app_root), (f"jit-{tag}", {"gadgetbook-test": tag}, "exec /app/jit 60")) as (box,):
        _, df = profile_container(f"gadgetbook-test={tag}")
        perf_map = Path(f"/proc/{box.pid}/root/tmp")
        assert not list(Path("/tmp").glob(f"perf-{box.pid}.map"))  # the map is the container's, not the host's
        assert list(perf_map.glob("perf-*.map"))
    share = df["count"][df.user_stack.str.endswith("main;jitted_hot_loop")].sum() / df["count"].sum()
    assert share >= 0.8, df[["user_stack", "count"]].head().to_string()


def test_debug_file_in_the_container_root_names_a_stripped_binary(app_root, tmp_path):
    chain = unwind.build(tmp_path, "chain.c", "chain", unwind.NO_FRAME_POINTERS, static=True)
    stripped = unwind.split_debug(chain, "chain-stripped", app_root)  # debug file under the container's /usr/lib/debug
    shutil.copy(stripped, app_root / "app" / "chain")
    tag = marker("dbg")
    with running(str(app_root), (f"dbg-{tag}", {"gadgetbook-test": tag}, "exec /app/chain 60")):
        _, df = profile_container(f"gadgetbook-test={tag}")
    share = df["count"][df.user_stack.str.endswith("main;chain_outer;chain_middle;chain_leaf")].sum()
    assert share / df["count"].sum() >= 0.8, df[["user_stack", "count"]].head().to_string()
