"""The loader on the real kernel: hook fallbacks, missing hooks, verifier errors, .rodata settings."""

import os
import subprocess
from pathlib import Path

import pytest

from gadgetbook.errors import GadgetError
from gadgetbook.kernel.loader import BpfObject, HookGroup, LoadPlan

pytestmark = pytest.mark.root
HERE = Path(__file__).parent
ROOT = HERE.parent.parent


# The fentry alternative is in every plan: this kernel refuses it at load, so each test also goes
# through the loader's retry without it.
FENTRY = HookGroup(("fentry_hook",), optional=True)


def _build(tmp_path, *defines):
    out = tmp_path / "hooks.bpf.o"
    subprocess.run(
        ["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", *defines,
         "-I", ROOT / "bpf" / "include", "-I", ROOT / "bpf" / ".build",
         "-c", HERE / "objects" / "hooks.bpf.c", "-o", out],
        check=True,
    )
    return str(out)


def test_first_available_hook_is_used(tmp_path):
    plan = LoadPlan(groups=[HookGroup(("missing_hook", "present_hook")), FENTRY])
    with BpfObject(_build(tmp_path), plan) as obj:
        assert obj.attached == ["present_hook"]


def test_hook_that_fails_to_load_falls_back(tmp_path):
    from gadgetbook.kernel import hooks

    assert hooks.available("fentry/vfs_read")  # offered by BTF: only loading tells
    plan = LoadPlan(groups=[HookGroup(("fentry_hook", "present_hook")), HookGroup(("missing_hook",), optional=True)])
    with BpfObject(_build(tmp_path), plan) as obj:
        assert obj.attached == ["present_hook"]
    assert "fentry_hook" in plan.unavailable


def test_alternative_of_several_programs_loads_all_of_them_or_none(tmp_path):
    path = _build(tmp_path, "-DWITH_PAIRS")
    # kprobes are off here: the pair is skipped whole, and the tracepoint pair after it is taken whole.
    plan = LoadPlan(groups=[HookGroup(("kprobe_hook+kretprobe_hook", "missing_hook+present_exit_hook",
                                       "present_hook+present_exit_hook")), FENTRY])
    with BpfObject(path, plan) as obj:
        assert sorted(obj.attached) == ["present_exit_hook", "present_hook"]
    plan = LoadPlan(groups=[HookGroup(("kprobe_hook+kretprobe_hook",)), FENTRY,
                            HookGroup(("present_hook", "present_exit_hook"))])
    with pytest.raises(GadgetError, match=r"none of the hooks hooks needs for kprobe/vfs_read, kretprobe/vfs_read"):
        BpfObject(path, plan)


def test_missing_hook_without_fallback_is_one_clear_error(tmp_path):
    plan = LoadPlan(groups=[HookGroup(("missing_hook",)), FENTRY])
    with pytest.raises(GadgetError, match=r"offers none of the hooks .*gadgetbook_test/does_not_exist"):
        BpfObject(_build(tmp_path), plan)


def test_optional_missing_hook_is_skipped(tmp_path):
    plan = LoadPlan(groups=[HookGroup(("missing_hook",), optional=True), FENTRY])
    with BpfObject(_build(tmp_path), plan) as obj:
        assert obj.attached == ["present_hook"]


def test_verifier_rejection_quotes_the_verifier(tmp_path):
    plan = LoadPlan(groups=[HookGroup(("missing_hook",), optional=True), FENTRY])
    with pytest.raises(GadgetError) as info:
        BpfObject(_build(tmp_path, "-DWITH_BAD_PROGRAM"), plan)
    msg = str(info.value)
    assert msg.startswith("The kernel refused to load hooks")
    assert "Verifier says:" in msg and "invalid mem access" in msg


def test_rodata_pid_filter_is_applied(tmp_path):
    import sys

    import numpy as np

    from gadgetbook.kernel.gadget import EVENTS_MAP
    from gadgetbook.kernel.ring import RingReader

    plan = LoadPlan(groups=[HookGroup(("missing_hook", "present_hook")), FENTRY],
                    rodata={"gadget_filter_pid": os.getpid()})
    with BpfObject(_build(tmp_path), plan) as obj:
        dtype = np.dtype([("ts", "<u8"), ("mntns", "<u8"), ("pid", "<u4"), ("tid", "<u4"), ("uid", "<u4"),
                          ("gid", "<u4"), ("comm", "S16"), ("which", "<u4"), ("pad", "<u4")])
        ring = RingReader(obj.map_fd(EVENTS_MAP), obj.map_max_entries(EVENTS_MAP), dtype)
        os.getppid()
        # Another process calling getppid must not show.
        subprocess.run([sys.executable, "-c", "import os; [os.getppid() for _ in range(100)]"], check=True)
        events = ring.read()
        ring.close()
    assert len(events) >= 1
    assert set(events["pid"].tolist()) == {os.getpid()}
    assert set(events["which"].tolist()) == {2}
