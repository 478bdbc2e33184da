"""The terminal against the real cluster: -A, --node, --context, --host, --include-self, and quiet node pods
(their own processes absent from results unless asked, a readiness check that starts no process)."""

from __future__ import annotations

import json
import threading

import pytest
from support.kube import cli, deployment, exec_in, namespace, ready_pods, wait_for

pytestmark = [pytest.mark.root, pytest.mark.cluster]

LOOP = "while true; do cat /etc/hostname >/dev/null; sleep 0.3; done"


def rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def app(cluster, deployed):
    from kubernetes import client

    core, apps = client.CoreV1Api(cluster.api), client.AppsV1Api(cluster.api)
    with namespace(core, "gb-cli") as ns:
        deployment(apps, ns, "app", {"app": "app"}, LOOP, replicas=1)
        pod = wait_for(lambda: ready_pods(core, ns, "app=app", 1), 120, "the app pod")[0]
        yield ns, pod, core


def _node_pod(core):
    from gadgetbook.kube.api import NAMESPACE

    return core.list_namespaced_pod(NAMESPACE).items[0]


def _exec_during(cluster, ns: str, pod: str, container: str, marker: str, delay: float = 4.0) -> threading.Thread:
    """Execs `echo MARKER` in a pod once the CLI had time to attach (it prints nothing until rows come);
    on a client of its own: the Kubernetes client's exec swaps its API client's transport while it runs."""
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(config_file=cluster.kubeconfig))

    def go():
        threading.Event().wait(delay)
        exec_in(core, ns, pod, ["/bin/echo", marker] if container == "app" else ["echo", marker], container=container)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def test_all_namespaces_leaves_the_node_pods_out_and_their_probe_starts_no_process(app, cluster):
    ns, pod, core = app
    node_pod = _node_pod(core)
    t = _exec_during(cluster, ns, pod.metadata.name, "app", "gb-cli-all")
    # 12 s: more than two readiness periods (5 s), so an exec probe would show at least twice.
    done = cli("execsnoop", "-A", "--timeout", "12", "-o", "json", "--kubeconfig", cluster.kubeconfig)
    t.join()
    assert done.returncode == 0, done.stderr
    got = rows(done.stdout)
    assert any(r["pod"] == pod.metadata.name and "gb-cli-all" in r["args"] for r in got), done.stdout[-2000:]
    assert not [r for r in got if r["namespace"] == "gadgetbook"]
    # Asked for, the node pods are traced too: and in 12 s their readiness check started nothing.
    done = cli("execsnoop", "--include-self", "-n", "gadgetbook", "-p", node_pod.metadata.name,
               "--timeout", "12", "-o", "json", "--kubeconfig", cluster.kubeconfig)
    assert done.returncode == 0, done.stderr  # the node pod was traced
    assert rows(done.stdout) == [], done.stdout[-2000:]


def test_a_whole_host_run_leaves_the_node_pods_own_processes_out_unless_asked(app, cluster):
    ns, pod, core = app
    node_pod = _node_pod(core)
    from gadgetbook.kube.api import NAMESPACE

    for include_self, marker in ((False, "gb-cli-host"), (True, "gb-cli-self")):
        t1 = _exec_during(cluster, ns, pod.metadata.name, "app", marker)
        t2 = _exec_during(cluster, NAMESPACE, node_pod.metadata.name, "node", marker)
        flags = ["--include-self"] if include_self else []
        done = cli("execsnoop", "--host", *flags, "--timeout", "8", "-o", "json", "--kubeconfig", cluster.kubeconfig)
        t1.join()
        t2.join()
        assert done.returncode == 0, done.stderr
        got = [r for r in rows(done.stdout) if marker in r["args"]]
        assert any(r["pod"] == pod.metadata.name for r in got), got
        from_node_pod = [r for r in got if r["pod"] == node_pod.metadata.name]
        assert bool(from_node_pod) == include_self, got


def test_node_limits_the_run_to_one_node(app, cluster):
    ns, pod, core = app
    node = pod.spec.node_name
    done = cli("opensnoop", "-n", ns, "--node", node, "--timeout", "3", "-o", "json",
               "--kubeconfig", cluster.kubeconfig)
    assert done.returncode == 0, done.stderr
    got = rows(done.stdout)
    assert got and {r["node"] for r in got} == {node} and {r["pod"] for r in got} == {pod.metadata.name}
    done = cli("opensnoop", "-n", ns, "--node", "no-such-node", "--timeout", "3", "--kubeconfig", cluster.kubeconfig)
    assert done.returncode != 0
    assert f"No running pod matches -n {ns} --node no-such-node in the cluster; nothing was traced." in done.stderr


def test_context_picks_the_kubeconfig_context(app, cluster):
    ns, pod, _ = app
    done = cli("opensnoop", "-n", ns, "--context", "gadgetbook", "--timeout", "3", "-o", "json",
               "--kubeconfig", cluster.kubeconfig)
    assert done.returncode == 0, done.stderr
    assert {r["pod"] for r in rows(done.stdout)} == {pod.metadata.name}
    done = cli("opensnoop", "-n", ns, "--context", "nope", "--timeout", "3", "--kubeconfig", cluster.kubeconfig)
    assert done.returncode != 0 and "nope" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_status_and_manifests_from_the_terminal(deployed, cluster, node_image):
    import yaml

    from gadgetbook.kube.manifests import objects

    done = cli("status", "--kubeconfig", cluster.kubeconfig, "--context", "gadgetbook")
    assert done.returncode == 0, done.stderr
    nodes = {n.metadata.name for n in deployed.core.list_node().items}
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == len(nodes) and all(" ready " in line and "BTF yes" in line for line in lines), done.stdout
    done = cli("manifests", "--image", node_image)
    assert done.returncode == 0, done.stderr
    assert [o for o in yaml.safe_load_all(done.stdout) if o] == objects(node_image)
