"""The cluster fixtures (tests/support/cluster_fixtures.py) for the end-to-end tests."""

from support.cluster_fixtures import bcc_node_image, cluster, deployed, kube, node_image  # noqa: F401
