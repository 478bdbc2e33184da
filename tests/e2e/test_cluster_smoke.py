"""Smoke test of the real single-node test cluster: Deployments, container ids, a privileged
hostPID pod, and port-forward through the API server with the Python client."""

from __future__ import annotations

import os
import time

import pytest
from kubernetes import client
from kubernetes.stream import portforward
from support.kube import TESTAPP, exec_in, namespace, ready_pods, wait_for

pytestmark = [pytest.mark.root, pytest.mark.cluster]

# Opens files, execs commands and makes TCP connections every second: the kind of
# activity gadgets trace. The listener answers each connection with `cat`.
APP_LOOP = (
    "nc -ll -p 8080 127.0.0.1 -e cat & "
    "while true; do cat /etc/hostname >/dev/null; ls / >/dev/null; "
    "echo ping | nc -w 1 127.0.0.1 8080 >/dev/null; sleep 1; done"
)

def container(name: str, command: str, **kw) -> client.V1Container:
    return client.V1Container(
        name=name, image=TESTAPP, image_pull_policy="Never", command=["sh", "-c", command], **kw
    )


@pytest.fixture(scope="module")
def core(cluster):
    return client.CoreV1Api(cluster.api)


# One namespace for the module: deleting a namespace takes several seconds.
@pytest.fixture(scope="module")
def ns(core):
    with namespace(core, "gb-smoke") as name:
        yield name


def test_deployment_pods_run_with_container_ids(cluster, core, ns):
    apps = client.AppsV1Api(cluster.api)
    labels = {"app": "api"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="api", labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[container("app", APP_LOOP)],
                    termination_grace_period_seconds=0,
                ),
            ),
        ),
    )
    t0 = time.monotonic()
    apps.create_namespaced_deployment(ns, deployment)
    pods = wait_for(lambda: ready_pods(core, ns, "app=api", 2), 90, "2 api pods Ready")
    print(f"\n2 Deployment pods Ready in {time.monotonic() - t0:.1f}s")

    for pod in pods:
        (status,) = pod.status.container_statuses
        runtime, _, cid = status.container_id.partition("://")
        assert runtime == "containerd"
        assert len(cid) == 64 and int(cid, 16) >= 0
        assert status.restart_count == 0
    # The loop keeps running: once each container has run for a few iterations (its listener answers
    # and its loop has called it), it is still up and was never restarted.
    def served_a_few(pod) -> bool:
        out = exec_in(core, ns, pod.metadata.name, ["sh", "-c", "echo ping | nc -w 1 127.0.0.1 8080"])
        return out.strip() == "ping"

    for pod in pods:
        wait_for(lambda pod=pod: served_a_few(pod), 30, f"{pod.metadata.name} to answer")
    for pod in core.list_namespaced_pod(ns, label_selector="app=api").items:
        status = pod.status.container_statuses[0]
        assert status.state.running is not None and status.restart_count == 0


def test_privileged_hostpid_pod(cluster, core, ns):
    kubelet_pid = int((cluster.state_dir / "pids" / "kubelet.pid").read_text())
    # Prints its effective capabilities and whether the host's kubelet is visible in /proc.
    script = (
        "grep CapEff /proc/self/status; "
        f"grep -q kubelet /proc/{kubelet_pid}/cmdline && echo host-pids-visible; "
        "test -e /host/sys/kernel/btf/vmlinux && echo host-sys-mounted; "
        "sleep 3600"
    )
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="privileged", labels={"app": "gadget"}),
        spec=client.V1PodSpec(
            host_pid=True,
            automount_service_account_token=False,
            termination_grace_period_seconds=0,
            containers=[
                container(
                    "k",
                    script,
                    security_context=client.V1SecurityContext(privileged=True),
                    volume_mounts=[client.V1VolumeMount(name="sys", mount_path="/host/sys")],
                )
            ],
            volumes=[
                client.V1Volume(name="sys", host_path=client.V1HostPathVolumeSource(path="/sys"))
            ],
        ),
    )
    core.create_namespaced_pod(ns, pod)
    wait_for(lambda: ready_pods(core, ns, "app=gadget", 1), 60, "the privileged pod")
    log = wait_for(
        lambda: (out := core.read_namespaced_pod_log("privileged", ns)).count("\n") >= 2 and out,
        20,
        "the privileged pod's output",
    )
    capeff = int(log.split("CapEff:")[1].split()[0], 16)
    assert capeff & (1 << 21), f"no CAP_SYS_ADMIN in a privileged container: {log!r}"
    assert "host-pids-visible" in log, log
    if os.path.exists("/sys/kernel/btf/vmlinux"):
        assert "host-sys-mounted" in log, log


def test_port_forward_round_trip(cluster, core, ns):
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="echo", labels={"app": "echo"}),
        spec=client.V1PodSpec(
            termination_grace_period_seconds=0,
            # Bound to the pod's loopback only: the kubelet forwards inside the pod netns.
            containers=[container("echo", "exec nc -ll -p 8888 127.0.0.1 -e cat")],
        ),
    )
    core.create_namespaced_pod(ns, pod)
    wait_for(lambda: ready_pods(core, ns, "app=echo", 1), 60, "the echo pod")

    payload = os.urandom(64 * 1024)

    def round_trip():
        pf = portforward(core.connect_get_namespaced_pod_portforward, "echo", ns, ports="8888")
        sock = pf.socket(8888)
        sock.settimeout(10)
        try:
            sock.sendall(payload)
            received = b""
            while len(received) < len(payload):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            return received
        except (TimeoutError, OSError):
            return b""
        finally:
            sock.close()
            pf.close()

    # The listener may need a moment after the container starts: retry a few times.
    received = wait_for(round_trip, 30, "a port-forward round trip", interval=0.5)
    assert received == payload
