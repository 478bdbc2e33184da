"""The cluster fixtures (tests/support/cluster_fixtures.py) for the end-to-end tests."""

from support.cluster_fixtures import cluster, deployed, kube, node_image  # noqa: F401
