"""Gadgets on the real local cluster: pods, not pids. Every gadget gets the same check by adding a case."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from support.kube import TESTAPP, deployment, exec_in, namespace, ready_pods, wait_for
from support.leftovers import bpf_fds

import gadgetbook
from gadgetbook.errors import GadgetError

pytestmark = [pytest.mark.root, pytest.mark.cluster]

DB_PORT = 5432
# db pods serve on a port (each connection echoes back what it gets); api pods open a marker file and
# call every db pod. Traffic stays between the pods this module made.
DB_LOOP = (f"nc -ll -p {DB_PORT} -e cat & "
           "while true; do cat /data/db-marker 2>/dev/null; sleep 0.2; done")
API_LOOP = ("while true; do cat /data/api-marker 2>/dev/null; "
            f"for ip in $DB_IPS; do echo gadgetbook-ping | nc -w 1 $ip {DB_PORT} >/dev/null; done; "
            "sleep 0.2; done")


@dataclass
class Shop:
    ns: str
    api: list  # pod objects
    db: list
    kubeconfig: str
    core: object = field(repr=False)
    apps: object = field(repr=False)


@pytest.fixture(scope="module")
def shop(cluster, deployed):
    from kubernetes import client

    core, apps = client.CoreV1Api(cluster.api), client.AppsV1Api(cluster.api)
    with namespace(core, "gb-shop") as ns:
        deployment(apps, ns, "db", {"app": "db"}, DB_LOOP)
        db = wait_for(lambda: ready_pods(core, ns, "app=db", 2), 120, "2 db pods ready")
        deployment(apps, ns, "api", {"app": "api"}, API_LOOP, env={"DB_IPS": " ".join(p.status.pod_ip for p in db)})
        api = wait_for(lambda: ready_pods(core, ns, "app=api", 2), 120, "2 api pods ready")
        yield Shop(ns, api, db, cluster.kubeconfig, core, apps)


@dataclass
class ClusterCase:
    """One gadget's cluster check: how to run it, what to make happen, what the rows must show."""

    gadget: str
    kwargs: Callable[[Shop], dict]
    trigger: Callable[[Shop], None]
    check: Callable[[Shop, object], None]


def _opensnoop_check(shop: Shop, df) -> None:
    api_pods = {p.metadata.name for p in shop.api}
    assert len(df) > 0
    assert set(df.pod) == api_pods  # both api pods, and nothing else: no db pods, no host rows
    assert set(df.namespace) == {shop.ns} and set(df.container) == {"app"}
    assert set(df[df.path == "/data/api-marker"].pod) == api_pods
    assert "/data/db-marker" not in set(df.path)
    assert (df.node != "").all()


def _execsnoop_trigger(shop: Shop) -> None:
    pod = shop.api[0].metadata.name
    for i in range(3):
        exec_in(shop.core, shop.ns, pod, ["/bin/echo", f"gb-exec-marker-{i}"])


def _execsnoop_check(shop: Shop, df) -> None:
    pod = shop.api[0].metadata.name
    mine = df[df.args.str.contains("gb-exec-marker", regex=False)]
    assert len(mine) == 3
    assert set(mine.pod) == {pod} and set(mine.container) == {"app"} and set(mine.namespace) == {shop.ns}
    assert set(df.pod) == {pod}


def _tcptracer_check(shop: Shop, df) -> None:
    api_pods, db_pods = {p.metadata.name for p in shop.api}, {p.metadata.name for p in shop.db}
    connects = df[df.type == "connect"]
    assert set(df.pod) == api_pods  # every api pod, and only them: no db pods, no host
    assert set(connects.remote_pod) == db_pods  # the peers are named: both db pods
    assert set(connects.dport) == {DB_PORT} and set(connects.remote_namespace) == {shop.ns}
    assert set(connects.daddr) == {p.status.pod_ip for p in shop.db}
    closes = df[df.type == "close"]
    assert len(closes) and (closes.sent > 0).any()


def _tcptop_check(shop: Shop, df) -> None:
    api_pods, db_pods = {p.metadata.name for p in shop.api}, {p.metadata.name for p in shop.db}
    assert set(df.pod) == db_pods  # the db pods, and only them
    served = df[df.sport == DB_PORT]
    assert set(served.remote_pod) <= api_pods and served.sent.sum() > 0 and served.received.sum() > 0
    # Each call sends "gadgetbook-ping\n" and gets it echoed: what the db pods received they sent back
    # (but for a call cut in half by the end of the run).
    assert abs(int(served.sent.sum()) - int(served.received.sum())) <= 2 * len("gadgetbook-ping\n")


def _profile_trigger(shop: Shop) -> None:
    # A busy loop in one api pod for three seconds (the exec'd shell is in the pod's container).
    exec_in(shop.core, shop.ns, shop.api[0].metadata.name,
            ["/bin/sh", "-c", "end=$(($(date +%s) + 3)); while [ $(date +%s) -lt $end ]; do :; done"])


def _profile_check(shop: Shop, profile) -> None:
    samples = profile.samples
    busy = shop.api[0].metadata.name
    assert samples["count"].sum() > 0
    assert set(samples.pod) <= {p.metadata.name for p in shop.api}  # api pods only: no db pods, no host
    by_pod = samples.groupby("pod", observed=True)["count"].sum()
    assert by_pod.idxmax() == busy and set(samples.container) == {"app"} and set(samples.namespace) == {shop.ns}


# A fresh file each time: touching one left owned by user 1 would need CAP_FOWNER too.
CHOWN_SCRIPT = "rm -f /tmp/gb-cap; touch /tmp/gb-cap && chown 1 /tmp/gb-cap"


def _capabilities_trigger(shop: Shop) -> None:
    exec_in(shop.core, shop.ns, shop.api[0].metadata.name, ["/bin/sh", "-c", CHOWN_SCRIPT])


def _capabilities_check(shop: Shop, df) -> None:
    pod = shop.api[0].metadata.name
    assert set(df.pod) <= {p.metadata.name for p in shop.api} and set(df.namespace) == {shop.ns}
    chown = df[(df.capability == "CAP_CHOWN") & (df.comm == "chown")]
    assert len(chown) and set(chown.pod) == {pod} and set(chown.container) == {"app"}  # the pod that ran it
    assert set(chown.verdict) == {"allowed"} and chown.audit.all()
    assert set(chown.syscall) <= {"chown", "lchown", "fchownat"} and (chown.node != "").all()


CASES = [
    ClusterCase("opensnoop", lambda s: {"selector": "app=api", "namespace": s.ns}, lambda s: None,
                _opensnoop_check),
    ClusterCase("execsnoop", lambda s: {"namespace": s.ns, "podname": s.api[0].metadata.name, "container": "app"},
                _execsnoop_trigger, _execsnoop_check),
    ClusterCase("tcptracer", lambda s: {"selector": "app=api", "namespace": s.ns}, lambda s: None,
                _tcptracer_check),
    ClusterCase("tcptop", lambda s: {"selector": "app=db", "namespace": s.ns, "interval": 1}, lambda s: None,
                _tcptop_check),
    ClusterCase("profile", lambda s: {"selector": "app=api", "namespace": s.ns, "frequency": 99},
                _profile_trigger, _profile_check),
    ClusterCase("capabilities", lambda s: {"selector": "app=api", "namespace": s.ns}, _capabilities_trigger,
                _capabilities_check),
]


def _holds(case: ClusterCase, shop: Shop, run) -> bool:
    try:
        case.check(shop, run.result())
        return True
    except AssertionError:
        return False


@pytest.mark.parametrize("case", CASES, ids=[c.gadget for c in CASES])
def test_gadget_rows_name_pods(shop, case):
    # start() returns once every node has attached the gadget: the trigger can act at once.
    run = gadgetbook.start(case.gadget, kubeconfig=shop.kubeconfig, **case.kwargs(shop))
    try:
        case.trigger(shop)
        if case.gadget != "profile":  # a profile's rows come only when it stops
            wait_for(lambda: _holds(case, shop, run), 60, f"{case.gadget}'s rows to show the workload",
                     interval=0.5)
    finally:
        run.stop()
    attrs = run.frame().attrs
    assert not attrs["errors"], attrs["errors"]
    # Every header and summary names the cluster's context and the namespace.
    assert re.fullmatch(rf"cluster \S+, namespace {shop.ns}", attrs["mode"]), attrs["mode"]
    case.check(shop, run.result())


# A Python service in a pod: Debian's python3.11 of the node image (the only image here with a Python).
PY_APP = "printf '%s' \"$SCRIPT\" > /tmp/nested.py && exec python3 /tmp/nested.py 3600"


def test_python_functions_in_a_pod(shop, node_image):
    from support import unwind

    script = (unwind.HERE / "nested.py").read_text()
    lines = {f.name: f.lineno for f in ast.parse(script).body if isinstance(f, ast.FunctionDef)}
    deployment(shop.apps, shop.ns, "py", {"app": "py"}, PY_APP, replicas=1, env={"SCRIPT": script},
               image=node_image)
    try:
        pods = wait_for(lambda: ready_pods(shop.core, shop.ns, "app=py", 1), 120, "the python pod ready")
        prof = gadgetbook.run("profile", kubeconfig=shop.kubeconfig, namespace=shop.ns, selector="app=py",
                              frequency=99, timeout=4, user_only=True)
    finally:
        shop.apps.delete_namespaced_deployment("py", shop.ns)
    df = prof.samples
    assert set(df.pod) == {pods[0].metadata.name} and prof.total >= 50, prof.summary()
    pattern = rf"outer \(nested\.py:{lines['outer']}\);(?:[^;]*;)*?inner \(nested\.py:{lines['inner']}\)"
    share = df["count"][df.user_stack.str.contains(pattern)].sum() / df["count"].sum()
    assert share >= 0.8, df[["user_stack", "count"]].head().to_string()


def test_pods_that_start_during_the_run_are_picked_up(shop):
    run = gadgetbook.start("opensnoop", kubeconfig=shop.kubeconfig, namespace=shop.ns, selector="app=api")
    try:
        shop.apps.patch_namespaced_deployment_scale("api", shop.ns, {"spec": {"replicas": 3}})
        pods = wait_for(lambda: ready_pods(shop.core, shop.ns, "app=api", 3), 120, "a third api pod")
        new = {p.metadata.name for p in pods} - {p.metadata.name for p in shop.api}
        try:
            wait_for(lambda: new <= set(run.result().pod), 30, "rows from the new pod")
        except AssertionError as exc:  # say what the run knew
            warnings = [w for s in run.sources for w in getattr(s, "warnings", [])]
            raise AssertionError(f"{exc}; errors {run.counters.errors}, warnings {warnings}, "
                                 f"pods {set(run.result().pod)}") from None
    finally:
        run.stop()
        shop.apps.patch_namespaced_deployment_scale("api", shop.ns, {"spec": {"replicas": 2}})
        wait_for(lambda: ready_pods(shop.core, shop.ns, "app=api", 2), 120, "back to 2 api pods")
    shop.api = ready_pods(shop.core, shop.ns, "app=api", 2)
    assert new <= set(run.result().pod)


def test_selector_matching_no_pod_runs_nothing(shop):
    with pytest.raises(GadgetError, match=f"No running pod matches -n {shop.ns} -l app=nothing in the cluster; "
                                          "nothing was traced. Try -A .* -n NAMESPACE .* or --local"):
        gadgetbook.start("opensnoop", kubeconfig=shop.kubeconfig, namespace=shop.ns, selector="app=nothing")


def test_unreachable_cluster_is_one_sentence(tmp_path):
    bad = tmp_path / "kubeconfig"
    bad.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: x}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n")
    t0 = time.monotonic()
    with pytest.raises(GadgetError, match="Cannot reach the Kubernetes API server"):
        gadgetbook.start("opensnoop", kubeconfig=str(bad), namespace="default")
    assert time.monotonic() - t0 < 60


def _node_server_pids(shop: Shop) -> list[int]:
    from gadgetbook.kube.api import NAMESPACE
    from gadgetbook.targets.local import scan_proc

    pod = shop.core.list_namespaced_pod(NAMESPACE).items[0]
    cid = pod.status.container_statuses[0].container_id.split("://")[-1]
    return scan_proc()[cid].pids


def test_unauthenticated_request_is_refused(shop):
    from gadgetbook.client.node_link import NodeLink
    from gadgetbook.kube.api import NAMESPACE, NODE_PORT, connect
    from gadgetbook.kube.node_pods import node_pods
    from gadgetbook.kube.portforward import pod_connector

    kube = connect(shop.kubeconfig)
    node, pod = next(iter(node_pods(kube).items()))
    with pytest.raises(GadgetError, match="refused the request: The API server did not accept your token"):
        NodeLink(node, pod_connector(kube, NAMESPACE, pod, NODE_PORT), "not-a-kubernetes-token").get("/node")


def test_killed_client_leaves_no_bpf_objects_on_the_node(shop):
    pids = _node_server_pids(shop)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    client = subprocess.Popen([sys.executable, "-m", "gadgetbook", "execsnoop", "--kubeconfig", shop.kubeconfig,
                               "-n", shop.ns, "-l", "app=db"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: any(bpf_fds(p) for p in pids), 30, "the node to load the gadget")
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    wait_for(lambda: not any(bpf_fds(p) for p in pids), 30, "the node to free the gadget")


def test_node_pod_crash_mid_run_keeps_what_arrived(shop, deployed):
    from gadgetbook.kube.api import NAMESPACE
    from gadgetbook.kube.deploy import wait_ready

    run = gadgetbook.start("opensnoop", kubeconfig=shop.kubeconfig, namespace=shop.ns, selector="app=api")
    try:
        wait_for(lambda: len(run.result()) > 0, 20, "first rows")
        for pod in shop.core.list_namespaced_pod(NAMESPACE).items:
            shop.core.delete_namespaced_pod(pod.metadata.name, NAMESPACE, grace_period_seconds=0)
        wait_for(lambda: run.result().attrs["errors"], 30, "the run to notice the lost node")
    finally:
        run.stop()
        wait_ready(deployed, 180, progress=lambda line: None)
    df = run.result()
    assert len(df) > 0 and set(df.pod) <= {p.metadata.name for p in shop.api}
    (node, why), = df.attrs["errors"].items()
    assert node == shop.api[0].spec.node_name and why


def test_network_policy_for_api_allows_egress_to_db_only_and_the_api_server_takes_it(shop):
    from kubernetes import client

    from gadgetbook.advise.network_policy import advise_network_policy

    advice = advise_network_policy(selector="app=api", namespace=shop.ns, kubeconfig=shop.kubeconfig, timeout=5)
    (policy,) = advice.policies
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app": "api"}}
    assert "ingress" not in spec  # nothing called the api pods: ingress denied
    assert spec["egress"] == [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}],
                               "ports": [{"protocol": "TCP", "port": DB_PORT}]}]
    net = client.NetworkingV1Api(shop.core.api_client)
    created = net.create_namespaced_network_policy(shop.ns, policy)
    assert created.metadata.name == policy["metadata"]["name"]
    assert created.spec.egress[0].ports[0].port == DB_PORT


def test_capabilities_advice_per_pod_runs_when_applied(shop):
    """The advised securityContext of the pod that used CAP_CHOWN, applied to a new pod doing the same:
    the API server takes it and the pod runs to completion."""
    from kubernetes import client

    from gadgetbook.advise.capabilities import advise_capabilities

    def on_run(run):
        time.sleep(0.5)
        _capabilities_trigger(shop)
        time.sleep(1.0)
        run.stop()

    advice = advise_capabilities(selector="app=api", namespace=shop.ns, kubeconfig=shop.kubeconfig, timeout=30,
                                 on_run=on_run)
    busy = shop.api[0].metadata.name
    docs = {d["pod"]: d for d in advice.documents}
    assert set(docs) == {p.metadata.name for p in shop.api}
    (container,) = docs[busy]["containers"]
    assert container["name"] == "app" and docs[busy]["namespace"] == shop.ns
    assert container["securityContext"] == {"capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}}
    (idle,) = docs[shop.api[1].metadata.name]["containers"]  # its loop (cat, nc, sleep) needs none
    assert idle["securityContext"] == {"capabilities": {"drop": ["ALL"]}}
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="gb-advised", namespace=shop.ns),
        spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(
            name="app", image=TESTAPP, image_pull_policy="Never", command=["sh", "-c", CHOWN_SCRIPT],
            security_context=container["securityContext"])]))
    shop.core.create_namespaced_pod(shop.ns, pod)
    try:
        def finished():
            phase = shop.core.read_namespaced_pod("gb-advised", shop.ns).status.phase
            return phase if phase in ("Succeeded", "Failed") else None

        assert wait_for(finished, 120, "the advised pod to finish") == "Succeeded"
    finally:
        shop.core.delete_namespaced_pod("gb-advised", shop.ns, grace_period_seconds=0)
