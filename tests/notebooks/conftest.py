"""Notebooks that need the cluster get the same fixtures as the end-to-end tests."""

from support.cluster_fixtures import cluster, deployed, kube, node_image  # noqa: F401
