"""Across nodes on the real cluster: a second kubelet on this host (tests/cluster/node.sh, its own
containerd, cgroup root, pod range and address) joins; gadgetbook runs one session per node, names each
row's node, keeps one node's rows when the other's node pod dies, and `--node` limits a run to one node.

Both nodes share this host's kernel, so each node pod sees every process: the mount-namespace filter
is what keeps a node's rows to its own pods.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.kube import namespace, wait_for

import gadgetbook

pytestmark = [pytest.mark.root, pytest.mark.cluster]

NODE_SH = Path(__file__).resolve().parents[1] / "cluster" / "node.sh"
SECOND = "127.0.0.2"
LOOP = "while true; do cat /etc/hostname >/dev/null; sleep 0.2; done"


@pytest.fixture(scope="module")
def two_nodes(cluster, deployed, node_image):
    from kubernetes import client

    from gadgetbook.kube.deploy import wait_ready
    from gadgetbook.kube.node_pods import node_pods

    core = client.CoreV1Api(cluster.api)
    subprocess.run(["bash", str(NODE_SH), "up", SECOND, node_image], check=True)
    try:
        wait_for(lambda: SECOND in node_pods(deployed), 180, "the node pod on the second node")
        wait_ready(deployed, 180, progress=lambda line: None)
        with namespace(core, "gb-nodes") as ns:
            first = core.list_node().items
            names = sorted(n.metadata.name for n in first)
            assert SECOND in names and len(names) == 2, names
            pods = {}
            for node in names:
                name = f"app-{node.replace('.', '-')}"
                core.create_namespaced_pod(ns, {
                    "metadata": {"name": name, "labels": {"app": "spread"}},
                    "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0, "containers": [{
                        "name": "app", "image": "localhost/gadgetbook-testapp:1", "imagePullPolicy": "Never",
                        "command": ["sh", "-c", LOOP]}]}})
                pods[node] = name

            def running():
                items = core.list_namespaced_pod(ns, label_selector="app=spread").items
                return len([p for p in items if p.status.phase == "Running"]) == 2

            wait_for(running, 120, "a pod on each node")
            yield ns, pods, core
    finally:
        subprocess.run(["bash", str(NODE_SH), "down", SECOND], check=False)
        wait_for(lambda: SECOND not in node_pods(deployed), 120, "the second node's pod to go")


def _rows_from(run, node: str) -> int:
    df = run.result()
    return int((df.node == node).sum())


def test_rows_from_both_nodes_name_their_node(two_nodes, cluster):
    ns, pods, _ = two_nodes
    run = gadgetbook.start("opensnoop", kubeconfig=cluster.kubeconfig, namespace=ns, selector="app=spread")
    try:
        assert sorted(s.name for s in run.sources) == sorted(pods)  # one session per node
        wait_for(lambda: all(_rows_from(run, n) for n in pods), 60, "rows from both nodes")
    finally:
        run.stop()
    df = run.result()
    assert not df.attrs["errors"], df.attrs["errors"]
    for node, pod in pods.items():
        assert set(df[df.pod == pod].node) == {node}  # each pod's rows come from its own node only
    assert set(df.pod) == set(pods.values()) and sorted(df.attrs["nodes"]) == sorted(pods)


def test_node_limits_the_run_to_one_node(two_nodes, cluster):
    ns, pods, _ = two_nodes
    run = gadgetbook.start("opensnoop", kubeconfig=cluster.kubeconfig, namespace=ns, selector="app=spread",
                           node=SECOND)
    try:
        assert [s.name for s in run.sources] == [SECOND]
        wait_for(lambda: _rows_from(run, SECOND) > 0, 60, "rows from the second node")
    finally:
        run.stop()
    df = run.result()
    assert set(df.node) == {SECOND} and set(df.pod) == {pods[SECOND]}


def test_a_lost_node_keeps_the_others_rows_and_is_named(two_nodes, cluster, deployed):
    from gadgetbook.kube.api import NAMESPACE
    from gadgetbook.kube.deploy import wait_ready
    from gadgetbook.kube.node_pods import node_pods

    ns, pods, core = two_nodes
    run = gadgetbook.start("opensnoop", kubeconfig=cluster.kubeconfig, namespace=ns, selector="app=spread")
    try:
        wait_for(lambda: all(_rows_from(run, n) for n in pods), 60, "rows from both nodes")
        core.delete_namespaced_pod(node_pods(deployed)[SECOND], NAMESPACE, grace_period_seconds=0)
        wait_for(lambda: SECOND in run.result().attrs["errors"], 60, "the run to name the lost node")
        before = _rows_from(run, "localhost")
        wait_for(lambda: _rows_from(run, "localhost") > before, 30, "more rows from the node still there")
    finally:
        run.stop()
        wait_ready(deployed, 180, progress=lambda line: None)
    df = run.result()
    assert list(df.attrs["errors"]) == [SECOND] and df.attrs["errors"][SECOND]
    assert _rows_from(run, SECOND) > 0 and _rows_from(run, "localhost") > 0  # what arrived stays
