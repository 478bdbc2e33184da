"""Kubernetes pieces that need no cluster: flags, queries, manifests, kubeconfig lookup."""

import pytest

from gadgetbook.errors import GadgetError
from gadgetbook.kube.api import kubeconfig_path
from gadgetbook.kube.manifests import objects
from gadgetbook.options import parse_run
from gadgetbook.targets.kubernetes import PodQuery


def test_kubectl_flags_parse():
    req = parse_run(["opensnoop", "-n", "shop", "-l", "app=api", "-p", "api-1", "-c", "app", "--node", "n1",
                     "--context", "ctx", "--kubeconfig", "/k"])
    kw = req.run_kwargs()
    assert kw == {"namespace": "shop", "selector": "app=api", "podname": "api-1", "container": "app", "node": "n1",
                  "context": "ctx", "kubeconfig": "/k", "failed": False}
    assert parse_run(["opensnoop", "-A"]).run_kwargs()["all_namespaces"] is True


def test_query_description():
    assert PodQuery(namespace="shop", selector="app=api").describe() == "-n shop -l app=api"
    assert PodQuery(all_namespaces=True, node="n1").describe() == "-A --node n1"


def test_local_does_not_mix_with_cluster_flags():
    import gadgetbook

    with pytest.raises(GadgetError, match="--local traces this host; it does not go with namespace"):
        gadgetbook.start("opensnoop", local=True, namespace="x")


def test_missing_explicit_kubeconfig():
    with pytest.raises(GadgetError, match="No kubeconfig at /nonexistent; pass an existing file"):
        kubeconfig_path("/nonexistent")


def test_daemonset_is_privileged_hostpid_and_asks_the_api_only_about_callers():
    objs = objects("img:1")
    ds = next(o for o in objs if o["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostPID"] is True and pod["serviceAccountName"] == "gadgetbook-node"
    (c,) = pod["containers"]
    assert c["image"] == "img:1" and c["securityContext"]["privileged"] is True
    assert "ports" not in c and "hostNetwork" not in pod  # only a port-forward reaches it
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["GADGETBOOK_ACCESS"] == "kubernetes"
    # Readiness without starting a process in the pod.
    assert c["readinessProbe"]["httpGet"]["port"] == int(env["GADGETBOOK_HEALTH_PORT"])
    # The node's rights: review tokens and access, list pods; nothing else.
    bound = {o["roleRef"]["name"] for o in objs if o["kind"] == "ClusterRoleBinding"
             if o["subjects"] == [{"kind": "ServiceAccount", "name": "gadgetbook-node", "namespace": "gadgetbook"}]}
    assert bound == {"system:auth-delegator", "gadgetbook-node"}
    node_role = next(o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "gadgetbook-node")
    assert node_role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    # Users no longer read the node's token; whole-host runs are a right of their own.
    role = next(o for o in objs if o["kind"] == "Role")
    assert not [r for r in role["rules"] if "secrets" in r["resources"]]
    host = next(o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "gadgetbook-host-tracer")
    assert host["rules"] == [{"apiGroups": ["gadgetbook.io"], "resources": ["nodes"], "verbs": ["trace"]}]
