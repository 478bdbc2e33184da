"""traceloop on the real local cluster: the node pod holds the recording after its client is killed; a new
process lists, shows and stops it by pod; a recording whose node pod went away is said so in one sentence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from support.kube import deployment, namespace, ready_pods, wait_for
from support.leftovers import bpf_fds

import gadgetbook
from gadgetbook.errors import GadgetError

pytestmark = [pytest.mark.root, pytest.mark.cluster]
tl = gadgetbook.recorder("traceloop")
LOOP = "while true; do cat /data/tl-marker 2>/dev/null; sleep 0.2; done"


@pytest.fixture(scope="module")
def rec(cluster, deployed):
    from kubernetes import client

    core, apps = client.CoreV1Api(cluster.api), client.AppsV1Api(cluster.api)
    with namespace(core, "gb-tl") as ns:
        deployment(apps, ns, "rec", {"app": "rec"}, LOOP, replicas=1)
        pods = wait_for(lambda: ready_pods(core, ns, "app=rec", 1), 120, "the pod ready")
        yield ns, pods[0], cluster.kubeconfig, core


def _node_server_pids(core) -> list[int]:
    from gadgetbook.kube.api import NAMESPACE
    from gadgetbook.targets.local import scan_proc

    pod = core.list_namespaced_pod(NAMESPACE).items[0]
    cid = pod.status.container_statuses[0].container_id.split("://")[-1]
    return scan_proc()[cid].pids


def test_recording_on_the_node_outlives_its_killed_client(rec):
    ns, pod, kubeconfig, core = rec
    where = {"namespace": ns, "selector": "app=rec", "kubeconfig": kubeconfig}
    servers = _node_server_pids(core)
    before = {p: bpf_fds(p) for p in servers}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    client = subprocess.Popen([sys.executable, "-c",
                               "import gadgetbook, sys, time; gadgetbook.recorder('traceloop').start("
                               f"namespace={ns!r}, selector='app=rec', kubeconfig={kubeconfig!r}, "
                               "syscalls='openat,execve'); print('started', flush=True); time.sleep(600)"],
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "started"
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    try:
        listing = tl.list(kubeconfig=kubeconfig)
        row = listing[listing.pod == pod.metadata.name]
        assert list(row.state) == ["recording"] and list(row.namespace) == [ns] and list(row.container) == ["app"]
        assert list(row.node) == [pod.spec.node_name]
        assert any(bpf_fds(p) - before[p] for p in servers)  # the node pod holds the recorder
        with pytest.raises(GadgetError, match=rf"-n {ns} -l app=rec is already being recorded by traceloop-"):
            tl.start(**where)
        (df,) = wait_for(lambda: (lambda d: (d,) if (d.error == "ENOENT").any() else None)(tl.show(**where)), 20,
                         "a failed open recorded")
        assert set(df.pod) == {pod.metadata.name} and set(df.namespace) == {ns}
        assert set(df.syscall) <= {"openat", "execve"}
        assert "/data/tl-marker" in set(df[df.error == "ENOENT"].path)
        assert df.attrs["overwritten"] == 0 and df.attrs["nodes"] == [pod.spec.node_name]
        stopped = tl.stop(**where)
        assert stopped.attrs["verb"] == "stop" and len(stopped) >= len(df)
    finally:
        try:
            tl.stop(**where)
        except GadgetError:
            pass  # stopped above
    wait_for(lambda: all(bpf_fds(p) <= before[p] for p in servers), 30, "the node to free the recorder")
    with pytest.raises(GadgetError, match=rf"Nothing is being recorded for -n {ns} -l app=rec"):
        tl.show(**where)


def test_a_recording_whose_node_pod_went_away_is_one_sentence(rec, deployed):
    from gadgetbook.kube.api import NAMESPACE
    from gadgetbook.kube.deploy import wait_ready

    ns, pod, kubeconfig, core = rec
    started = tl.start(namespace=ns, selector="app=rec", kubeconfig=kubeconfig, syscalls="openat")
    rid = started.id.iloc[0]
    old = set()
    try:
        for node_pod in core.list_namespaced_pod(NAMESPACE).items:
            old.add(node_pod.metadata.name)
            core.delete_namespaced_pod(node_pod.metadata.name, NAMESPACE, grace_period_seconds=0)
    finally:
        # Its replacement, ready (other tests of the session go on with it).
        wait_for(lambda: ready_pods(core, NAMESPACE, "", 1) and not old & {
            p.metadata.name for p in core.list_namespaced_pod(NAMESPACE).items}, 180, "a new node pod ready")
        wait_ready(deployed, 180, progress=lambda line: None)
    with pytest.raises(GadgetError, match=rf"Nothing is being recorded for {rid}.* The node pod on "
                                          rf"{pod.spec.node_name} \(.*\) started after {rid} began: the recording "
                                          "ended with the pod that held it."):
        tl.show(id=rid, kubeconfig=kubeconfig)
