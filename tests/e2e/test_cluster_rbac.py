"""Least privilege on the real cluster: the node pods trace for a caller only what the API server lets
that caller see, and the `gadgetbook-user` role is all a user needs.

A ServiceAccount bound to one namespace traces its pods there; asked (straight at the node API, as a
leaked container id would allow) for another namespace's pods or for a whole host, the node refuses in
one sentence and never issues a BPF_PROG_LOAD, which bpftrace watches on the node's server process.
"""

from __future__ import annotations

import base64
import re
import signal
import subprocess

import pytest
import yaml
from support.kube import deployment, exec_in, namespace, ready_pods, wait_for

import gadgetbook
from gadgetbook.errors import GadgetError

pytestmark = [pytest.mark.root, pytest.mark.cluster]

LOOP = "while true; do cat /etc/hostname >/dev/null; sleep 0.3; done"
BPF_PROG_LOAD = 5


def _kubeconfig(path, admin_kubeconfig: str, user: str, token: str) -> str:
    """A kubeconfig for `user` with this token, on the admin's server and CA."""
    admin = yaml.safe_load(open(admin_kubeconfig))
    cfg = {"apiVersion": "v1", "kind": "Config", "clusters": admin["clusters"],
           "users": [{"name": user, "user": {"token": token}}],
           "contexts": [{"name": user, "context": {"cluster": admin["clusters"][0]["name"], "user": user}}],
           "current-context": user}
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _bind(rbac, ns: str, name: str, role_kind: str, role: str, subject: dict) -> None:
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": name}, "subjects": [subject],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}})


class Tracer:
    def __init__(self, kubeconfig, token, allowed, other, other_pod):
        self.kubeconfig, self.token, self.allowed, self.other, self.other_pod = (
            kubeconfig, token, allowed, other, other_pod)


@pytest.fixture(scope="module")
def tracer(cluster, deployed, tmp_path_factory):
    """A ServiceAccount with gadgetbook-user in one namespace (and the node-pod access in gadgetbook)."""
    from kubernetes import client

    from gadgetbook.kube.api import NAMESPACE

    core, apps = client.CoreV1Api(cluster.api), client.AppsV1Api(cluster.api)
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    with namespace(core, "gb-mine") as mine, namespace(core, "gb-theirs") as theirs:
        for ns in (mine, theirs):
            deployment(apps, ns, "app", {"app": "app"}, LOOP, replicas=1)
        core.create_namespaced_service_account(mine, {"metadata": {"name": "tracer"}})
        subject = {"kind": "ServiceAccount", "name": "tracer", "namespace": mine}
        _bind(rbac, mine, "tracer-gadgetbook", "ClusterRole", "gadgetbook-user", subject)
        _bind(rbac, NAMESPACE, f"tracer-{mine}", "Role", "gadgetbook-user", subject)
        secret = wait_for(lambda: (core.read_namespaced_service_account("tracer", mine).secrets or [None])[0], 30,
                          "the tracer's token secret")
        token = base64.b64decode(core.read_namespaced_secret(secret.name, mine).data["token"]).decode()
        wait_for(lambda: ready_pods(core, mine, "app=app", 1), 120, "the pod in the allowed namespace")
        other = wait_for(lambda: ready_pods(core, theirs, "app=app", 1), 120, "the pod in the other namespace")[0]
        kc = _kubeconfig(tmp_path_factory.mktemp("tracer") / "kubeconfig", cluster.kubeconfig, "tracer", token)
        try:
            yield Tracer(kc, token, mine, theirs, other)
        finally:
            rbac.delete_namespaced_role_binding(f"tracer-{mine}", NAMESPACE)


def _node(kube):
    from gadgetbook.kube.node_pods import node_pods

    (node, pod), *_ = node_pods(kube).items()
    return node, pod


class BpfCalls:
    """bpftrace counting the bpf(2) commands of one process while it lives."""

    def __init__(self, pid: int) -> None:
        self.proc = subprocess.Popen(
            ["bpftrace", "-e", f"tracepoint:syscalls:sys_enter_bpf /pid == {pid}/ {{ @[args->cmd] = count(); }}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for(lambda: self._attached(), 30, "bpftrace to attach")

    def _attached(self) -> bool:
        line = self.proc.stdout.readline()
        return "Attaching" in line

    def stop(self) -> dict[int, int]:
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=30)
        return {int(k): int(v) for k, v in re.findall(r"@\[(\d+)\]: (\d+)", out)}


def _server_pid(kube, pod_name: str) -> int:
    """The node pod's server process (the pod shares this host's kernel and /proc)."""
    from gadgetbook.kube.api import NAMESPACE
    from gadgetbook.targets.local import scan_proc

    pod = kube.core.read_namespaced_pod(pod_name, NAMESPACE)
    return min(scan_proc()[pod.status.container_statuses[0].container_id.split("://")[-1]].pids)


def _start_at_node(kube, token: str, start: dict):
    """A run asked of the node API directly, with this token (no client-side checks in the way)."""
    from gadgetbook.client.node_link import NodeLink, RemoteSource
    from gadgetbook.kube.api import NAMESPACE, NODE_PORT
    from gadgetbook.kube.portforward import pod_connector

    node, pod = _node(kube)
    return RemoteSource(NodeLink(node, pod_connector(kube, NAMESPACE, pod, NODE_PORT), token), start, {})


def test_a_namespace_bound_account_traces_its_pods(tracer, cluster):
    from kubernetes import client

    core = client.CoreV1Api(cluster.api)
    pod = ready_pods(core, tracer.allowed, "app=app", 1)[0].metadata.name
    run = gadgetbook.start("execsnoop", kubeconfig=tracer.kubeconfig, namespace=tracer.allowed, selector="app=app")
    try:
        wait_for(lambda: len(run.result()) > 0, 30, "rows from the allowed namespace")
        exec_in(core, tracer.allowed, pod, ["/bin/echo", "gb-rbac-marker"])
        wait_for(lambda: run.result().args.str.contains("gb-rbac-marker").any(), 30, "the marker exec")
    finally:
        run.stop()
    df = run.result()
    assert not df.attrs["errors"], df.attrs["errors"]
    assert set(df.namespace) == {tracer.allowed} and set(df.pod) == {pod}


def test_another_namespace_is_refused_by_the_api_server_first(tracer):
    with pytest.raises(GadgetError, match=f"Permission denied while listing pods in namespace {tracer.other}"):
        gadgetbook.start("execsnoop", kubeconfig=tracer.kubeconfig, namespace=tracer.other)


def test_the_node_refuses_another_namespaces_containers_without_loading_bpf(tracer, deployed):
    node, pod = _node(deployed)
    cid = tracer.other_pod.status.container_statuses[0].container_id
    watch = BpfCalls(_server_pid(deployed, pod))
    try:
        with pytest.raises(GadgetError) as info:
            _start_at_node(deployed, tracer.token, {"gadget": "execsnoop", "container_ids": [cid]})
    finally:
        calls = watch.stop()
    message = str(info.value)
    assert f"may not get pods in namespace {tracer.other}, so the node traces nothing there" in message
    assert message.count(". ") == 0, message  # one sentence
    assert calls.get(BPF_PROG_LOAD, 0) == 0, calls


def test_the_node_refuses_a_whole_host_run_without_loading_bpf(tracer, deployed):
    node, pod = _node(deployed)
    watch = BpfCalls(_server_pid(deployed, pod))
    try:
        with pytest.raises(GadgetError, match=f"may not trace every process of node {node}; a run over a whole host "
                                              "needs the gadgetbook-host-tracer role"):
            gadgetbook.start("execsnoop", kubeconfig=tracer.kubeconfig, host=True, node=node)
    finally:
        calls = watch.stop()
    assert calls.get(BPF_PROG_LOAD, 0) == 0, calls


def test_the_watch_sees_what_an_allowed_run_loads(tracer, deployed):
    """The control for the two checks above: bpftrace does see the node load an allowed run's programs."""
    node, pod = _node(deployed)
    mine = ready_pods(deployed.core, tracer.allowed, "app=app", 1)[0]
    watch = BpfCalls(_server_pid(deployed, pod))
    try:
        cid = mine.status.container_statuses[0].container_id
        src = _start_at_node(deployed, tracer.token, {"gadget": "execsnoop", "container_ids": [cid]})
        src.finish()
        src.close()
    finally:
        calls = watch.stop()
    assert calls.get(BPF_PROG_LOAD, 0) > 0, calls


def test_the_viewer_kubeconfig_with_the_gadgetbook_user_role_is_enough(cluster, deployed, tmp_path):
    """The cluster scripts' read-only user, bound to gadgetbook-user and nothing more for gadgetbook: runs a
    gadget, reads `status`; without the binding in gadgetbook's namespace it cannot reach a node pod."""
    from kubernetes import client

    from gadgetbook.kube import deploy as dep
    from gadgetbook.kube.api import NAMESPACE, connect

    rbac, core, apps = (client.RbacAuthorizationV1Api(cluster.api), client.CoreV1Api(cluster.api),
                        client.AppsV1Api(cluster.api))
    viewer = str(cluster.state_dir / "kubeconfig-viewer")
    user = {"kind": "User", "name": "gadgetbook-viewer", "apiGroup": "rbac.authorization.k8s.io"}
    with namespace(core, "gb-viewer") as ns:
        deployment(apps, ns, "app", {"app": "app"}, LOOP, replicas=1)
        wait_for(lambda: ready_pods(core, ns, "app=app", 1), 120, "the viewer's pod")
        # `view` alone (what the viewer has) does not include pods/portforward in gadgetbook's namespace.
        with pytest.raises(GadgetError, match="Permission denied while port-forwarding|refused"):
            gadgetbook.run("opensnoop", kubeconfig=viewer, namespace=ns, timeout=1)
        _bind(rbac, NAMESPACE, "viewer-gadgetbook", "Role", "gadgetbook-user", user)
        try:
            df = gadgetbook.run("opensnoop", kubeconfig=viewer, namespace=ns, timeout=2)
            rows = dep.status(connect(viewer))
        finally:
            rbac.delete_namespaced_role_binding("viewer-gadgetbook", NAMESPACE)
    assert len(df) > 0 and set(df.namespace) == {ns} and not df.attrs["errors"]
    assert rows and all(r["ready"] and r["kernel"] for r in rows)
