"""deploy, status, undeploy and redeploy against the real local cluster, from the terminal; the image deployed."""

import os
import subprocess

import pytest
from support.cluster_fixtures import ROOT
from support.kube import cli

from gadgetbook.kube import deploy as dep

pytestmark = [pytest.mark.root, pytest.mark.cluster]


def test_deploy_status_undeploy_redeploy(deployed, node_image, cluster):
    kube = deployed
    rows = dep.status(kube)
    assert rows and all(r["ready"] for r in rows)
    assert {r["node"] for r in rows} == {n.metadata.name for n in kube.core.list_node().items}
    assert all(r["btf"] is True and r["version"] and r["image"].endswith(node_image.split("/")[-1]) for r in rows)

    # Twice is the same as once: nothing is recreated, the pods stay.
    pods_before = {r["pod"] for r in rows}
    kc = ("--kubeconfig", cluster.kubeconfig)
    done = cli("deploy", "--image", node_image, "--timeout", "2m", *kc)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "namespace/gadgetbook configured" in lines and "secret/gadgetbook-node-token kept" in lines
    assert "clusterrole/gadgetbook-host-tracer configured" in lines
    assert {r["pod"] for r in dep.status(kube)} == pods_before

    done = cli("undeploy", "--timeout", "2m", *kc)
    assert done.returncode == 0 and "gadgetbook removed" in done.stdout, (done.stdout, done.stderr)
    assert not [r for r in kube.rbac.list_cluster_role().items if r.metadata.name.startswith("gadgetbook-")]
    done = cli("status", *kc)
    assert done.returncode != 0
    assert "gadgetbook is not deployed in this cluster; run `gadgetbook deploy`" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr

    done = cli("deploy", "--image", node_image, "--timeout", "3m", *kc)
    assert done.returncode == 0, done.stderr
    assert all(r["ready"] for r in dep.status(kube))


def test_manifests_file_matches_the_code():
    """images/k8s/gadgetbook.yaml is what `gadgetbook manifests` prints: one declaration, two views."""
    from pathlib import Path

    import yaml

    from gadgetbook.kube.manifests import objects

    path = Path(__file__).parents[2] / "images" / "k8s" / "gadgetbook.yaml"
    assert list(yaml.safe_load_all(path.read_text())) == objects()


def test_node_image_stays_under_250_mb(node_image):
    """Every node pulls it: the image the tests deploy (with the %%node kernel) stays under 250 MB."""
    env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "tests" / "cluster" / "containers.conf")}
    size = int(subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", node_image], env=env,
                              check=True, capture_output=True, text=True).stdout)
    assert size < 250_000_000, f"the node image is {size / 1e6:.0f} MB"
