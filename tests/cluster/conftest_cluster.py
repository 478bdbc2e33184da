"""Session fixture for end-to-end tests on a real single-node cluster (tests/cluster/up.sh).

Use from a conftest.py:  ``from conftest_cluster import cluster  # noqa: F401``
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
STATE = pathlib.Path(os.environ.get("GADGETBOOK_CLUSTER_DIR", "/var/lib/gadgetbook-cluster"))


@dataclasses.dataclass
class Cluster:
    kubeconfig: str
    api: object  # kubernetes.client.ApiClient
    state_dir: pathlib.Path
    started_here: bool

    def import_image(self, *images: str) -> None:
        """Copy podman images into the cluster's containerd (no registry needed)."""
        subprocess.run([str(HERE / "import-image.sh"), *images], check=True)


def _is_up() -> bool:
    return subprocess.run([str(HERE / "up.sh"), "--check"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def cluster():
    """Bring the cluster up unless it already is; tear it down only if we started it."""
    if os.geteuid() != 0:
        pytest.skip("the test cluster needs root (containerd, kubelet)")
    import kubernetes
    started = not _is_up()
    try:
        if started:
            # up.sh prints progress and, on failure, the failing component's log tail;
            # a failed start is still torn down below.
            subprocess.run([str(HERE / "up.sh")], check=True)
        kubeconfig = str(STATE / "kubeconfig")
        api = kubernetes.config.new_client_from_config(config_file=kubeconfig)
        yield Cluster(kubeconfig, api, STATE, started)
        api.close()
    finally:
        if started and os.environ.get("GADGETBOOK_KEEP_CLUSTER") != "1":
            subprocess.run([str(HERE / "down.sh")], check=False)
