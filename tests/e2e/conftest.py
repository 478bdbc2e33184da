"""The cluster fixtures (tests/support/cluster_fixtures.py) for the end-to-end tests, and an IPython shell whose
magics find the local cluster."""

import pytest
from support.cluster_fixtures import bcc_node_image, cluster, deployed, kube, node_image  # noqa: F401
from support.shell import gadgetbook_shell


@pytest.fixture
def ip(cluster, monkeypatch):  # noqa: F811
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    return gadgetbook_shell()
