"""%%bcc on the real local cluster: the cell's C compiled by bcc in the node pod (the image built with bcc)
against the node's own headers (Debian's, linked on this host for its kernel, as PLATFORM.md describes),
filtered to one pod; a node without headers, and a pod of the default image, each say so in one sentence."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
from IPython.core.error import UsageError
from support.cells import BCC_OPEN_COUNTER, with_marker
from support.kernel_headers import debian_headers, no_headers
from support.kube import cell_and_other, deployment, exec_in, ready_pods, wait_for

pytestmark = [pytest.mark.root, pytest.mark.cluster]

MARKER = f"/tmp/gb-bcc-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def pods(cluster, deployed):
    with cell_and_other(cluster.api, "gb-bcc", MARKER) as made:
        yield made


@pytest.fixture(scope="module")
def bcc_pods(pods, kube, bcc_node_image, node_image):
    """The node pods of the image with bcc for this module's tests; the default image's again afterwards."""
    from gadgetbook.kube.deploy import deploy

    deploy(kube, bcc_node_image, wait=180, progress=lambda line: None, bcc=True)
    try:
        yield pods
    finally:
        deploy(kube, node_image, wait=180, progress=lambda line: None)


@pytest.fixture
def headers():
    """Linked for one test at a time: a test of their absence takes the same lock."""
    with debian_headers() as version:
        yield version


def bcc_programs() -> set[int]:
    """Ids of the loaded tracepoint programs (a TRACEPOINT_PROBE's, which the node's bcc names after its
    category: the node pod's programs are this host's kernel's)."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return {p["id"] for p in json.loads(out or "[]") if p.get("type") == "tracepoint"}


def test_a_node_pod_without_bcc_says_how_to_get_one(pods, ip, kube):
    from gadgetbook.kube.deploy import status

    ns, cell, _, _ = pods
    assert [r["bcc"] for r in status(kube)] == [False]
    with pytest.raises(UsageError) as err:
        ip.run_cell_magic("bcc", f"-n {ns} -p {cell} --timeout 1", with_marker(BCC_OPEN_COUNTER, MARKER))
    assert str(err.value) == (
        "localhost: This node's gadgetbook pod has no bcc (the default image leaves its compiler out); redeploy "
        "with `gadgetbook deploy --bcc` (the image built by `images/build.sh --bcc`), or write the program for "
        "%%bpf, which any node pod runs.")


def test_a_pods_opens_counted_exactly_with_the_nodes_warning(bcc_pods, headers, cluster, kube):
    from gadgetbook.kube.deploy import status
    from gadgetbook.programs.api import start_bcc

    ns, cell, other, core = bcc_pods
    assert [r["bcc"] for r in status(kube)] == [True]
    warned = []
    before = bcc_programs()
    run = start_bcc(with_marker(BCC_OPEN_COUNTER, MARKER), namespace=ns, podname=cell,
                    kubeconfig=cluster.kubeconfig, warn=warned.append)
    loaded = bcc_programs() - before
    assert loaded  # compiled and attached on the node: this host's kernel
    with run:
        exec_in(core, ns, cell, ["/bin/sh", "-c", f"for i in 1 2 3 4 5 6; do cat {MARKER}; done; true"])
        exec_in(core, ns, other, ["/bin/sh", "-c", f"cat {MARKER}; true"])  # another pod: not counted
        run.stop()
    result = run.conclude()
    assert not result.attrs["errors"], result.attrs["errors"]
    events = result.events
    assert list(events.columns) == ["node", "pid", "comm", "path"]  # the record struct's fields, as bcc laid them
    assert len(events) == 6 and set(events.path) == {MARKER} and set(events.comm) == {"cat"}
    assert set(events.node) == {"localhost"} and str(events.pid.dtype) == "uint32"
    counts = result["counts"].set_index("comm")
    assert counts.loc["cat", "value"] == 6 and set(result["counts"].node) == {"localhost"}
    assert result.attrs["targets"] == f"pods {ns}/{cell}"
    release = os.uname().release
    assert warned == [f"The kernel headers in /lib/modules/{release}/build on node localhost are for {headers}, not "
                      f"the running {release}: tracepoint arguments are right (bcc reads their layout from the "
                      "kernel's tracefs), but reads of kernel structs through these headers may be silently wrong."]
    assert not bcc_programs() & loaded  # the node's bcc process has gone, and its probes


def test_the_magic_on_a_label_shows_the_warning_and_agrees_with_its_table(bcc_pods, headers, ip, capfd):
    ns, cell, _, _ = bcc_pods
    ip.run_cell_magic("bcc", f"-n {ns} -l app=cell --timeout 3 --name looped",
                      with_marker(BCC_OPEN_COUNTER, f"{MARKER}-loop"))
    assert "on node localhost are for" in capfd.readouterr().err  # the warning, shown in the cell's output
    result = ip.user_ns["looped"]
    assert len(result.events) >= 5 and set(result.events.path) == {f"{MARKER}-loop"}  # the loop: every 0.2 s
    assert result["counts"].set_index("comm").loc["cat", "value"] == len(result.events)


def test_a_node_without_headers_says_how_to_get_them(bcc_pods, ip):
    ns, cell, _, _ = bcc_pods
    before = bcc_programs()
    with no_headers():
        with pytest.raises(UsageError) as err:
            ip.run_cell_magic("bcc", f"-n {ns} -p {cell} --timeout 1", with_marker(BCC_OPEN_COUNTER, MARKER))
    release = os.uname().release
    assert str(err.value).startswith(
        f"localhost: bcc compiles against the running kernel's headers and there are none (/lib/modules/{release}/"
        f"build on node localhost is missing); install them on the node (Debian: apt-get install "
        f"linux-headers-{release};")
    assert bcc_programs() <= before


def test_a_pod_that_starts_during_the_run_joins_its_filter(bcc_pods, headers, cluster):
    from kubernetes import client

    from gadgetbook.programs.api import start_bcc

    ns, _, _, core = bcc_pods
    apps = client.AppsV1Api(cluster.api)
    # Each pod opens the marker only once told to (a file of its own): `[` is the shell's, and opens nothing.
    told = f"while true; do [ -e /tmp/go ] && cat {MARKER}-late; sleep 0.2; done"
    deployment(apps, ns, "late", {"app": "late"}, told, replicas=1)
    first = wait_for(lambda: ready_pods(core, ns, "app=late", 1), 120, "the first late pod")[0].metadata.name
    run = start_bcc(with_marker(BCC_OPEN_COUNTER, f"{MARKER}-late"), namespace=ns, selector="app=late",
                    kubeconfig=cluster.kubeconfig, warn=lambda _: None)
    with run:
        apps.patch_namespaced_deployment_scale("late", ns, {"spec": {"replicas": 2}})
        pods = wait_for(lambda: ready_pods(core, ns, "app=late", 2), 120, "a second late pod")
        (second,) = {p.metadata.name for p in pods} - {first}
        exec_in(core, ns, second, ["/bin/sh", "-c", "touch /tmp/go"])
        wait_for(lambda: len(run.frame()) >= 3, 30, "rows from the pod that started during the run")
        run.stop()
    result = run.conclude()
    assert not result.attrs["errors"], result.attrs["errors"]
    assert set(result.events.path) == {f"{MARKER}-late"} and set(result.events.comm) == {"cat"}
