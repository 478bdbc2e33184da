"""%%bpf through a real IPython shell and gadgetbook.bpf: real programs compiled here, loaded on this kernel,
counted against real workloads, filtered to a real podman container; the verifier's refusal and runaway output."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from IPython.core.error import UsageError
from support.cells import LENGTHS, OPEN_COUNTER, open_and_conclude, open_times, own_cat, when_attached, with_marker
from support.leftovers import bpf_fds
from support.podman import running
from support.shell import gadgetbook_shell
from support.workloads import marker

import gadgetbook
from gadgetbook.programs.api import start

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def ip():
    return gadgetbook_shell()


def test_events_and_map_count_exactly_the_workloads_opens(ip, tmp_path):
    path = f"/tmp/{marker('gb-bpf')}"
    cat = own_cat(tmp_path)
    times = 7
    worker = when_attached(lambda: open_times(cat, path, times))
    returned = ip.run_cell_magic("bpf", "--local --timeout 3 --name opens", with_marker(OPEN_COUNTER, path))
    worker.join()
    assert returned is None  # with --name the result goes to the variable
    result = ip.user_ns["opens"]
    mine = result.events[result.events.comm == cat.name]
    assert len(mine) == times and set(mine.path) == {path}
    assert set(result.events.path) == {path}  # only the marker's opens became records
    counts = result["counts"]
    assert list(counts.columns) == ["node", "comm", "value"]
    assert counts.set_index("comm").loc[cat.name, "value"] == times
    assert counts.value.sum() == len(result.events)  # the map and the rows agree, whoever else opened it
    # Rows carry the common columns, from gadget.h's struct gadget_process at the record's start.
    assert list(result.events.columns[:10]) == ["timestamp", "node", "namespace", "pod", "container", "pid", "tid",
                                                "comm", "uid", "gid"]
    assert result.events.timestamp.dtype == "datetime64[ns]" and result.attrs["gadget"] == "opens"


def test_filtered_to_one_podman_container(tmp_path, rootfs):
    tag = marker("c")
    path = f"/tmp/gb-cell-{tag}"
    script = "sleep 600"
    with running(rootfs, (f"cell-{tag}", {"gadgetbook-test": tag}, script),
                 (f"other-{tag}", {"gadgetbook-test": tag}, script)) as (mine, other):
        cat = own_cat(tmp_path)

        def workload():
            mine.exec("/bin/sh", "-c", f"for i in 1 2 3 4 5; do cat {path}; done; true")
            other.exec("/bin/sh", "-c", f"cat {path}; true")
            open_times(cat, path, 3)  # the host opens the same path: not counted

        run = start(with_marker(OPEN_COUNTER, path), container=mine.name, local=True)
        with run:
            workload()
            run.stop()
        result = run.conclude()
    assert len(result.events) == 5
    assert set(result.events.container) == {mine.name} and set(result.events.comm) == {"cat"}
    assert result["counts"].set_index("comm").loc["cat", "value"] == 5 and len(result["counts"]) == 1
    assert result.attrs["targets"] == f"containers {mine.name}"


def test_a_container_target_needs_the_gadget_filter(rootfs):
    program = """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
SEC("tracepoint/syscalls/sys_enter_openat")
int nothing(void *ctx) { return 0; }
"""
    tag = marker("c")
    with running(rootfs, (f"nofilter-{tag}", {"gadgetbook-test": tag}, "sleep 600")) as (c,):
        with pytest.raises(gadgetbook.GadgetError, match="cannot be limited to containers.*gadget_should_discard"):
            start(program, container=c.name, local=True)
    assert not bpf_fds()


VERIFIER_REFUSES = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int count(void *ctx)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&counts, &key);
	*n += 1;
	return 0;
}
"""


def test_verifier_rejection_names_the_line_and_leaves_nothing_loaded(ip):
    before = bpf_fds()
    with pytest.raises(UsageError) as err:
        ip.run_cell_magic("bpf", "--local --timeout 1", VERIFIER_REFUSES)
    text = str(err.value)
    first = text.splitlines()[0]
    assert first.startswith("The kernel's verifier refused the program cell at line 16 (*n += 1;)")
    assert "invalid mem access 'map_value_or_null'" in first
    # The relevant lines, not the whole log.
    assert "The verifier's last lines:" in text and len(text.splitlines()) <= 16
    assert bpf_fds() == before


def test_a_program_that_never_emits_says_zero_events(ip, tmp_path):
    path = f"/tmp/{marker('never')}"  # nobody opens it
    result = ip.run_cell_magic("bpf", f"--pid {os.getpid()} --timeout 1", with_marker(OPEN_COUNTER, path))
    assert len(result.events) == 0 and len(result["counts"]) == 0
    assert "cell: 0 events in 1." in result.summary()
    assert result.attrs["notes"][0].startswith("Its ring buffer stayed empty: check the program's hook (SEC)")
    assert "Its ring buffer stayed empty" in result._repr_html_()
    assert list(result.events.columns[:2]) == ["timestamp", "node"]  # the empty frame has every column


RUNAWAY = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "gadget.h"

struct hit {
	__u32 pid;
	__s32 dfd;
};

SEC("tracepoint/syscalls/sys_enter_openat")
int every_open(struct trace_event_raw_sys_enter *ctx)
{
	if (gadget_should_discard())
		return 0;
	struct hit *h = gadget_reserve(sizeof(*h));

	if (!h)
		return 0;
	h->pid = bpf_get_current_pid_tgid() >> 32;
	h->dfd = (int)ctx->args[0];
	gadget_submit(h);
	return 0;
}
"""


def test_runaway_output_is_bounded_and_the_rest_counted_as_lost(tmp_path):
    path = tmp_path / "often"
    path.write_text("x")
    opens = 20_000
    with start(RUNAWAY, pid=os.getpid(), max_events=100, local=True) as run:
        for _ in range(opens):
            os.close(os.open(path, os.O_RDONLY))
        run.stop()
    result = run.conclude()
    # A record without gadget.h's header: the node, then the struct's own fields.
    assert list(result.events.columns) == ["node", "pid", "dfd"]
    assert len(result.events) == 100 and set(result.events.pid) == {os.getpid()}
    lost = sum(result.attrs["lost"].values())
    assert lost >= opens - 100 and result.attrs["dropped"] == lost
    assert "100 events" in result.summary() and f"{lost:,} lost" in result.summary()


def test_histograms_per_cpu_sums_and_readings_at_intervals(tmp_path):
    path = tmp_path / "opened"
    path.write_text("x")
    length = len(str(path)) + 1  # bpf_probe_read_user_str counts the NUL
    result = open_and_conclude(start(LENGTHS, pid=os.getpid(), interval=0.3, local=True), path, 40)
    assert sorted(result.histograms) == ["length_dist", "name_lengths"]
    hist = result["name_lengths"]
    last = hist[hist.timestamp == hist.timestamp.max()]
    bucket = last[(last.low <= length) & (length <= last.high)]
    assert bucket["count"].sum() >= 40  # every open of the file, in the bucket of its length
    assert last["count"].sum() == result["calls"].loc[result["calls"].timestamp == hist.timestamp.max(), "value"].sum()
    assert hist.timestamp.nunique() >= 3  # read at every interval and once at the end
    keyed = result["length_dist"]
    keyed_last = keyed[keyed.timestamp == keyed.timestamp.max()]
    hit = last[last["count"] > 0]
    assert keyed_last.set_index("slot")["count"].to_dict() == hit.set_index("slot")["count"].to_dict()
    png = result.histogram_png("name_lengths")
    assert png.startswith(b"\x89PNG") and len(png) > 2000
    assert "data:image/png;base64," in result._repr_html_()
    assert np.all(result["calls"].value >= 0)


def test_compile_error_marks_the_lines_and_loads_nothing(ip):
    broken = with_marker(OPEN_COUNTER, "/tmp/x").replace("key.comm, sizeof(key.comm)", "key.comz, sizeof(key.comm)")
    with pytest.raises(UsageError) as err:
        ip.run_cell_magic("bpf", "--local --timeout 1", broken)
    at = next(i for i, line in enumerate(broken.splitlines(), 1) if "key.comz" in line)
    lines = str(err.value).splitlines()
    assert lines[0] == "The cell does not compile (1 error):"
    assert lines[1].startswith(f"line {at}: no member named 'comz' in 'struct comm_key'")
    marked = [line for line in lines if line.lstrip().startswith(">")]
    assert marked == [f"  > {at} | \tbpf_get_current_comm(key.comz, sizeof(key.comm));"]
    caret = lines[lines.index(marked[0]) + 1]
    assert caret.endswith("^") and caret.index("^") == marked[0].index("comz")
    assert not bpf_fds()


def test_the_terminal_runs_a_program_from_a_file(tmp_path):
    path = f"/tmp/{marker('gb-cli')}"
    source = tmp_path / "opens.bpf.c"
    source.write_text(with_marker(OPEN_COUNTER, path))
    cat = own_cat(tmp_path)
    cli = subprocess.Popen([sys.executable, "-m", "gadgetbook", "bpf", str(source), "--local", "--timeout", "4"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(kind == "bpf_link" for _, kind in bpf_fds(cli.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    open_times(cat, path, 3)
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    rows = [line for line in out.splitlines() if cat.name in line]
    assert len(rows) == 4 and all(path in line for line in rows[:3])  # three records, then the map's row
    assert rows[3].split() == [cat.name, "3"] and "\ncounts:\n" in out
    assert err.strip().splitlines()[-1].startswith("opens: 3 events, 0 lost")


def test_a_saved_program_run_replays_its_events(ip, tmp_path):
    path = f"/tmp/{marker('gb-save')}"
    recording = tmp_path / "opens.parquet"
    run = start(with_marker(OPEN_COUNTER, path), pid=os.getpid(), save=str(recording), local=True)
    with run:
        for _ in range(3):
            open(path, "w").close()
        run.stop()
    result = run.conclude()
    again = ip.run_line_magic("gadget", f"replay {recording}")
    assert len(again.events) == 3 and again.maps == {}
    assert again.events.equals(result.events) and again.attrs["kind"] == "program"


def test_config_local_keeps_a_program_on_this_host(ip, tmp_path, monkeypatch):
    # A kubeconfig whose API server does not answer: with GadgetMagics.local a selector means this host's
    # containers (none matches this one), and nothing goes to the cluster.
    from tests.notebooks.test_notebooks import UNREACHABLE_KUBECONFIG

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    ip.run_line_magic("config", "GadgetMagics.local = True")
    try:
        with pytest.raises(UsageError) as raised:
            ip.run_cell_magic("bpf", f"-l gadgetbook-test={os.getpid()}-none --timeout 0.3",
                              with_marker(OPEN_COUNTER, "/tmp/gb-none"))
    finally:
        ip.run_line_magic("config", "GadgetMagics.local = False")
    assert "Kubernetes" not in str(raised.value) and "container" in str(raised.value), str(raised.value)
