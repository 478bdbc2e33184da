"""Helpers for tests on the real local cluster: bounded waits, a namespace per module, workloads, exec."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager

TESTAPP = "localhost/gadgetbook-testapp:1"


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@contextmanager
def namespace(core, prefix: str):
    """A namespace of the test's own, deleted (and waited for) afterwards."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    def default_sa_with_token():
        # Kubernetes 1.20 refuses pods until the service account and its token secret exist.
        sas = core.list_namespaced_service_account(name, field_selector="metadata.name=default")
        return sas.items and sas.items[0].secrets

    try:
        wait_for(default_sa_with_token, 30, "the default service account and its token")
        yield name
    finally:
        core.delete_namespace(name, body=client.V1DeleteOptions(grace_period_seconds=0))

        def gone():
            try:
                core.read_namespace(name)
            except ApiException as e:
                return e.status == 404
            return False

        wait_for(gone, 120, f"namespace {name} to be deleted", interval=0.5)


def deployment(apps, ns: str, name: str, labels: dict[str, str], command: str, replicas: int = 2,
               env: dict[str, str] | None = None, image: str = TESTAPP):
    from kubernetes import client

    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    termination_grace_period_seconds=0,
                    containers=[client.V1Container(name="app", image=image, image_pull_policy="Never",
                                                   command=["sh", "-c", command],
                                                   env=[client.V1EnvVar(name=k, value=v)
                                                        for k, v in (env or {}).items()])],
                ),
            ),
        ),
    )
    apps.create_namespaced_deployment(ns, body)


def ready_pods(core, ns: str, selector: str, count: int):
    pods = core.list_namespaced_pod(ns, label_selector=selector).items
    ready = [p for p in pods if p.status.phase == "Running" and p.status.container_statuses
             and all(c.ready for c in p.status.container_statuses) and p.metadata.deletion_timestamp is None]
    return ready if len(ready) == count else None


@contextmanager
def cell_and_other(api, prefix: str, marker: str):
    """A namespace with two pods (labels app=cell and app=other), each opening MARKER-loop every 0.2 s; yields
    (namespace, cell pod, other pod, CoreV1Api), and removes them all."""
    from kubernetes import client

    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    loop = f"while true; do cat {marker}-loop 2>/dev/null; sleep 0.2; done"
    with namespace(core, prefix) as ns:
        deployment(apps, ns, "cell", {"app": "cell"}, loop, replicas=1)
        deployment(apps, ns, "other", {"app": "other"}, loop, replicas=1)
        cell = wait_for(lambda: ready_pods(core, ns, "app=cell", 1), 120, "the cell pod")[0]
        other = wait_for(lambda: ready_pods(core, ns, "app=other", 1), 120, "the other pod")[0]
        yield ns, cell.metadata.name, other.metadata.name, core


def exec_in(core, ns: str, pod: str, argv: list[str], container: str = "app") -> str:
    from kubernetes.stream import stream

    return stream(core.connect_get_namespaced_pod_exec, pod, ns, command=argv, container=container,
                  stderr=True, stdin=False, stdout=True, tty=False, _request_timeout=30)


def cli(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """The gadgetbook command of this checkout, run to completion."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "gadgetbook", *argv], capture_output=True, text=True, env=env,
                          timeout=timeout)
