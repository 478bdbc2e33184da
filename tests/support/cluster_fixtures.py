"""Fixtures for tests on the real local cluster: the cluster, the node image, gadgetbook deployed."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

from conftest_cluster import cluster  # noqa: E402,F401

NODE_IMAGE = "localhost/gadgetbook-node:e2e"


def build_node_image(cluster, name: str, *flags: str) -> str:  # noqa: F811
    """The node pod image built from this checkout (images/build.sh FLAGS) and imported into the cluster, tagged
    NAME-<content id>."""
    env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "tests" / "cluster" / "containers.conf")}
    subprocess.run(["bash", str(ROOT / "tests" / "cluster" / "images.sh"), "base"], check=True, env=env)
    # Built under a name of this run's own (other checkouts build images of the same name), then tagged
    # by content: a cluster left up with older node pods rolls them to this build on deploy.
    building = f"{name}-build-{uuid.uuid4().hex[:8]}"
    subprocess.run(["bash", str(ROOT / "images" / "build.sh"), "--base", "localhost/gadgetbook-base:bookworm-slim",
                    "--tag", building, *flags], check=True, env=env, stdout=subprocess.DEVNULL)
    image_id = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", building], check=True, env=env,
                              capture_output=True, text=True).stdout.strip()
    image = f"{name}-{image_id[:12]}"
    subprocess.run(["podman", "tag", building, image], check=True, env=env)
    subprocess.run(["podman", "untag", image, building], check=True, env=env)
    tags = subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"], check=True, env=env,
                          capture_output=True, text=True).stdout.split()
    old = [t for t in tags if t.startswith(f"{name}-") and t != image and "-build-" not in t
           and t[len(name) + 1:].isalnum()]  # earlier builds of this checkout (not another variant's)
    for tag in old:
        subprocess.run(["podman", "rmi", tag], env=env, capture_output=True)
    cluster.import_image(image)
    return image


@pytest.fixture(scope="session")
def node_image(cluster):  # noqa: F811
    """The node pod image, built from this checkout (offline) and imported into the cluster."""
    return build_node_image(cluster, NODE_IMAGE)


@pytest.fixture(scope="session")
def bcc_node_image(cluster):  # noqa: F811
    """The node pod image with bcc (images/build.sh --bcc), for %%bcc cells on the nodes."""
    return build_node_image(cluster, NODE_IMAGE + "-bcc", "--bcc")


@pytest.fixture(scope="session")
def kube(cluster):  # noqa: F811
    from gadgetbook.kube.api import connect

    return connect(cluster.kubeconfig)


@pytest.fixture(scope="session")
def deployed(kube, node_image):
    from gadgetbook.kube.deploy import deploy

    deploy(kube, node_image, wait=180, progress=lambda line: None)
    return kube
