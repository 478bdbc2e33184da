"""deploy, status, undeploy and redeploy against the real local cluster."""

import pytest

from gadgetbook.errors import GadgetError
from gadgetbook.kube import deploy as dep

pytestmark = [pytest.mark.root, pytest.mark.cluster]


def test_deploy_status_undeploy_redeploy(deployed, node_image):
    kube = deployed
    rows = dep.status(kube)
    assert rows and all(r["ready"] for r in rows)
    assert {r["node"] for r in rows} == {n.metadata.name for n in kube.core.list_node().items}
    assert all(r["btf"] is True and r["version"] and r["image"].endswith("gadgetbook-node:e2e") for r in rows)

    # Twice is the same as once: nothing is recreated, the pods stay.
    pods_before = {r["pod"] for r in rows}
    lines = []
    dep.deploy(kube, node_image, wait=120, progress=lines.append)
    assert "namespace/gadgetbook configured" in lines and "secret/gadgetbook-node-token kept" in lines
    assert {r["pod"] for r in dep.status(kube)} == pods_before

    dep.undeploy(kube, wait=120, progress=lines.append)
    with pytest.raises(GadgetError, match="gadgetbook is not deployed in this cluster; run `gadgetbook deploy`"):
        dep.status(kube)

    dep.deploy(kube, node_image, wait=180, progress=lines.append)
    assert all(r["ready"] for r in dep.status(kube))


def test_manifests_file_matches_the_code():
    """images/k8s/gadgetbook.yaml is what `gadgetbook manifests` prints: one declaration, two views."""
    from pathlib import Path

    import yaml

    from gadgetbook.kube.manifests import objects

    path = Path(__file__).parents[2] / "images" / "k8s" / "gadgetbook.yaml"
    assert list(yaml.safe_load_all(path.read_text())) == objects()
