"""%%bpf and %%node on the real local cluster: a program compiled here against the node's BTF runs in the
node pod filtered to one pod; a cell runs in a kernel inside the node pod and its DataFrame comes back."""

from __future__ import annotations

import json
import uuid

import pytest
from IPython.core.error import UsageError
from support.cells import OPEN_COUNTER, with_marker
from support.kube import cell_and_other, exec_in

pytestmark = [pytest.mark.root, pytest.mark.cluster]

MARKER = f"/tmp/gb-pod-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def pods(cluster, deployed):
    with cell_and_other(cluster.api, "gb-cells", MARKER) as made:
        yield made


def test_a_program_counts_exactly_the_opens_of_one_pod(pods, cluster):
    from gadgetbook.programs.api import start

    ns, cell, other, core = pods
    run = start(with_marker(OPEN_COUNTER, MARKER), namespace=ns, podname=cell, kubeconfig=cluster.kubeconfig)
    with run:
        exec_in(core, ns, cell, ["/bin/sh", "-c", f"for i in 1 2 3 4 5 6; do cat {MARKER}; done; true"])
        exec_in(core, ns, other, ["/bin/sh", "-c", f"cat {MARKER}; true"])  # another pod: not counted
        run.stop()
    result = run.conclude()
    assert not result.attrs["errors"], result.attrs["errors"]
    events = result.events
    assert len(events) == 6 and set(events.path) == {MARKER}
    assert set(events.pod) == {cell} and set(events.namespace) == {ns} and set(events.container) == {"app"}
    assert set(events.node) == {"localhost"} and set(events.comm) == {"cat"}
    counts = result["counts"]
    assert counts.set_index("comm").loc["cat", "value"] == 6 and set(counts.node) == {"localhost"}
    assert result.attrs["targets"] == f"pods {ns}/{cell}"


def test_the_bpf_magic_on_a_pod_agrees_with_its_map(pods, ip):
    ns, cell, _, _ = pods
    loop = f"{MARKER}-loop"
    ip.run_cell_magic("bpf", f"-n {ns} -l app=cell --timeout 3 --name looped", with_marker(OPEN_COUNTER, loop))
    result = ip.user_ns["looped"]
    assert len(result.events) >= 5 and set(result.events.pod) == {cell}  # the loop opens it every 0.2 s
    assert result["counts"].set_index("comm").loc["cat", "value"] == len(result.events)


def test_a_cell_on_the_node_reads_its_cgroup_and_runs_a_gadget(pods, ip, capsys):
    cell = f"""
import json, os
import gadgetbook
cgroup = open("/proc/1/cgroup").read()
print(cgroup, end="")
with gadgetbook.start("opensnoop", pid=os.getpid()) as run:
    open({MARKER + '-node'!r}, "w").close()
    run.stop()
df = run.conclude()
print("FRAME", df.to_json(orient="split", date_format="iso", date_unit="ns"))
print("DTYPES", json.dumps({{c: str(t) for c, t in df.dtypes.items()}}))
"""
    ip.run_cell_magic("node", "localhost --pull df,cgroup", cell)
    out = capsys.readouterr().out
    assert out.startswith(ip.user_ns["cgroup"]) and ip.user_ns["cgroup"] == open("/proc/1/cgroup").read()
    df = ip.user_ns["df"]
    printed = next(line for line in out.splitlines() if line.startswith("FRAME ")).removeprefix("FRAME ")
    assert df.to_json(orient="split", date_format="iso", date_unit="ns") == printed
    dtypes = json.loads(next(line for line in out.splitlines() if line.startswith("DTYPES ")).removeprefix("DTYPES "))
    assert {c: str(t) for c, t in df.dtypes.items()} == dtypes
    assert MARKER + "-node" in set(df.path) and df.attrs["gadget"] == "opensnoop"


def test_a_node_without_a_gadgetbook_pod_is_one_sentence(pods, ip):
    with pytest.raises(UsageError, match=r"No gadgetbook node pod is ready on the node 'elsewhere'; "
                                         r"nodes with one: localhost \(deploy with `gadgetbook deploy`\)."):
        ip.run_cell_magic("node", "elsewhere", "print(1)")


def test_a_pull_that_does_not_exist_is_one_sentence(pods, ip):
    with pytest.raises(UsageError, match="--pull missing: the kernel on localhost has no variable missing"):
        ip.run_cell_magic("node", "localhost --pull missing", "present = 1")
    assert "missing" not in ip.user_ns


def test_nothing_of_the_runs_stays_on_the_node(pods):
    # The node pod's own view: no BPF links of the cells' programs are left (names are the hook functions').
    import subprocess

    progs = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True,
                                      check=True).stdout or "[]")
    assert not [p for p in progs if p.get("name") == "count_opens"], "a cell's program is still loaded"
