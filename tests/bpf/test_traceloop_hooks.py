"""Each of traceloop's hook alternatives (BTF tracepoints, raw tracepoints, the raw_syscalls tracepoints)
records the same rows on this kernel: arguments, path strings, return values, durations."""

import os
import subprocess

import pytest
from support.workloads import marker

from gadgetbook import catalog
from gadgetbook.frames.syscalls import SyscallDecoder
from gadgetbook.kernel.syscalls import syscall_table
from gadgetbook.kinds import kind_of
from gadgetbook.kinds.recorder import HOOK_KINDS, KernelRecorder

pytestmark = pytest.mark.root


@pytest.mark.parametrize("hook", HOOK_KINDS)
def test_each_hook_alternative_records_the_same_rows(hook, tmp_path):
    found = tmp_path / marker("found")
    found.write_text("x")
    missing = tmp_path / marker("missing")
    spec = catalog.get("traceloop")
    k = KernelRecorder(spec, kind_of(spec).settings({"entries": 256}), births=False, prefer=hook)
    try:
        assert {p.split("_sys_")[0] for p in k.obj.attached if "_sys_" in p} == {hook}
        # A process in a mount namespace of its own, waiting for a line before it works.
        p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                              f"read x; cat {found} {missing}; exit 0"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ours = os.stat("/proc/self/ns/mnt").st_ino
        while os.stat(f"/proc/{p.pid}/ns/mnt").st_ino == ours:
            pass  # until unshare has made its namespace
        slot = k.add(os.stat(f"/proc/{p.pid}/ns/mnt").st_ino)
        p.communicate(b"go\n", timeout=30)
        records, head = k.read(slot)
    finally:
        k.close()
    rows = SyscallDecoder(syscall_table()).decode(records, "n", ("", "", "x"), 0)
    syscalls, paths, errors = rows["syscall"].values(), rows["path"].values(), rows["error"].values()
    opened = [i for i in range(len(records)) if syscalls[i] == "openat" and paths[i] == str(found)]
    failed = [i for i in range(len(records)) if syscalls[i] == "openat" and paths[i] == str(missing)]
    assert len(opened) == 1 and rows["ret"][opened[0]] >= 0 and errors[opened[0]] == ""
    assert len(failed) == 1 and errors[failed[0]] == "ENOENT" and opened[0] < failed[0]
    assert rows["args"].values()[opened[0]].startswith(f'AT_FDCWD, "{found}", O_RDONLY')
    assert rows["returned"][opened[0]] and rows["duration"][opened[0]] > 0
    assert "execve" in set(syscalls) and head == len(records)
