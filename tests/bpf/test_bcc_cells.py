"""%%bcc for real: bcc (Debian's python3-bpfcc) compiling against Debian's kernel headers linked for this kernel
as PLATFORM.md describes (and their absence seen for real), counting real workloads, filtered to a podman
container by cgroup id; compile errors, the kernel's refusal and the child process that must not stay."""

import json
import os
import subprocess

import pytest
from IPython.core.error import UsageError
from support.cells import BCC_OPEN_COUNTER, open_and_conclude, open_times, own_cat, with_marker
from support.kernel_headers import debian_headers, modules_dir, no_headers
from support.podman import running
from support.shell import gadgetbook_shell
from support.workloads import marker

from gadgetbook.programs.api import start_bcc

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def ip():
    return gadgetbook_shell()


@pytest.fixture(scope="module")
def headers():
    with debian_headers() as version:
        yield version
    assert not (modules_dir() / "build").exists()  # the links went with the test


def children() -> list[str]:
    return subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split()


def bcc_programs() -> set[int]:
    """Ids of the loaded programs bcc names after their TRACEPOINT_PROBE."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return {p["id"] for p in json.loads(out or "[]") if p.get("name", "").startswith("tracepoint__")}


def test_without_headers_one_sentence_and_nothing_runs(ip):
    before = bcc_programs()
    with no_headers() as build:
        with pytest.raises(UsageError) as err:
            ip.run_cell_magic("bcc", "--timeout 1", with_marker(BCC_OPEN_COUNTER, "/tmp/x"))
    message = str(err.value)
    assert message.startswith(f"bcc compiles against the running kernel's headers and there are none ({build} "
                              f"is missing); install them (Debian: apt-get install linux-headers-{os.uname().release}")
    assert "\n" not in message and children() == []
    assert bcc_programs() <= before


def test_exact_counts_with_another_kernels_headers_and_the_warning(headers, tmp_path):
    path = f"/tmp/{marker('gb-bcc')}"
    cat = own_cat(tmp_path)
    warned = []
    before = bcc_programs()
    run = start_bcc(with_marker(BCC_OPEN_COUNTER, path), local=True, warn=warned.append)
    loaded = bcc_programs() - before
    assert loaded  # started: compiled, attached, and its perf buffers open
    with run:
        open_times(cat, path, 7)
        run.stop()
    result = run.conclude()
    mine = result.events[result.events.comm == cat.name]
    assert len(mine) == 7 and set(mine.path) == {path}
    assert list(result.events.columns) == ["node", "pid", "comm", "path"]  # the record struct's fields
    assert str(result.events.pid.dtype) == "uint32"
    counts = result["counts"].set_index("comm")
    assert counts.loc[cat.name, "value"] == 7
    assert warned == [f"The kernel headers in {modules_dir() / 'build'} are for {headers}, not the running "
                      f"{os.uname().release}: tracepoint arguments are right (bcc reads their layout from the "
                      "kernel's tracefs), but reads of kernel structs through these headers may be silently wrong."]
    assert children() == [] and not bcc_programs() & loaded  # the bcc process has gone, and its probes


def test_the_magic_shows_the_warning_before_the_run(headers, ip, capfd, tmp_path):
    path = f"/tmp/{marker('gb-bcc-magic')}"
    result = ip.run_cell_magic("bcc", "--timeout 1.5", with_marker(BCC_OPEN_COUNTER, path))
    err = capfd.readouterr().err
    assert err.startswith(f"warning: The kernel headers in {modules_dir() / 'build'} are for {headers}")
    assert len(result.events) == 0 and "cell: 0 events in 1." in result.summary()  # nobody opened it
    assert list(result["counts"].columns) == ["node", "comm", "value"] and len(result["counts"]) == 0


def test_filtered_to_one_podman_container_by_cgroup(headers, rootfs, tmp_path):
    tag = marker("b")
    path = f"/tmp/gb-bcc-{tag}"
    with running(rootfs, (f"bcc-{tag}", {"gadgetbook-test": tag}, "sleep 600"),
                 (f"other-{tag}", {"gadgetbook-test": tag}, "sleep 600")) as (mine, other):
        cat = own_cat(tmp_path)
        run = start_bcc(with_marker(BCC_OPEN_COUNTER, path), container=mine.name, local=True, warn=lambda _: None)
        with run:
            mine.exec("/bin/sh", "-c", f"for i in 1 2 3 4; do cat {path}; done; true")
            other.exec("/bin/sh", "-c", f"cat {path}; true")
            open_times(cat, path, 2)
            run.stop()
        result = run.conclude()
    assert len(result.events) == 4 and set(result.events.comm) == {"cat"}
    assert set(result.events.pid) <= set(range(1, 1 << 22))
    assert result["counts"].set_index("comm").loc["cat", "value"] == 4 and len(result["counts"]) == 1
    assert result.attrs["targets"] == f"containers {mine.name}"


def test_compile_errors_name_the_cells_line_after_a_tracepoint_probe(headers, ip):
    broken = with_marker(BCC_OPEN_COUNTER, "/tmp/x").replace("e.pid = bpf", "e.pidd = bpf")
    at = next(i for i, line in enumerate(broken.splitlines(), 1) if "e.pidd" in line)
    with pytest.raises(UsageError) as err:
        ip.run_cell_magic("bcc", "--timeout 1", broken)
    lines = str(err.value).splitlines()
    assert lines[0] == "The cell does not compile (1 error):"
    assert lines[1] == f"line {at}: no member named 'pidd' in 'struct event'; did you mean 'pid'?"
    assert [line for line in lines if line.lstrip().startswith(">")] == [
        f"  > {at} | \te.pidd = bpf_get_current_pid_tgid() >> 32;"]
    assert children() == []


def test_the_kernels_refusal_shows_its_last_lines(headers, ip):
    refused = """
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
	u32 key = 0;
	u64 *n = counts.lookup(&key);
	*n += 1;
	return 0;
}
"""
    with pytest.raises(UsageError) as err:
        ip.run_cell_magic("bcc", "--timeout 1", refused)
    text = str(err.value)
    assert text.startswith("The kernel refused the program: Failed to load BPF program")
    assert "invalid mem access 'map_value_or_null'" in text and len(text.splitlines()) <= 14
    assert children() == []


HISTOGRAM = r"""
BPF_HISTOGRAM(dist);
BPF_PERCPU_ARRAY(calls, u64, 1);

TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
	char path[64];
	long len = bpf_probe_read_user_str(path, sizeof(path), args->filename);

	if (len <= 0)
		return 0;
	dist.increment(bpf_log2l(len));
	calls.increment(0);
	return 0;
}
"""


def test_tables_histograms_and_per_cpu_sums_with_a_pid_filter(headers, tmp_path):
    path = tmp_path / "opened"
    path.write_text("x")
    length = len(str(path)) + 1
    result = open_and_conclude(start_bcc(HISTOGRAM, pid=os.getpid(), interval=0.4, local=True, warn=lambda _: None),
                               path, 30)
    assert result.histograms == ["dist"]
    dist = result["dist"]
    last = dist[dist.timestamp == dist.timestamp.max()]
    bucket = last[(last.low <= length) & (length <= last.high)]
    assert int(bucket["count"].sum()) >= 30
    calls = result["calls"]
    assert int(calls[calls.timestamp == calls.timestamp.max()].value.sum()) == int(last["count"].sum())
    assert dist.timestamp.nunique() >= 3
    assert result.histogram_png("dist").startswith(b"\x89PNG")
