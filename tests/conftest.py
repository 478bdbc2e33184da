"""Shared fixtures: root-only marking, real containers, and a check that no BPF object outlives a test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.leftovers import bpf_fds  # noqa: E402

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config, items):
    # Tests that load BPF need root; CI runs as root, so this skips only on a developer's unprivileged shell.
    skip = pytest.mark.skip(reason="needs root to load eBPF programs")
    for item in items:
        if "root" in item.keywords and not IS_ROOT:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_bpf_left_behind(request):
    """Every root test: this process holds no BPF program, link or map afterwards.

    Checked on our own file descriptors, so tools (or other test runs) loading
    programs at the same time cannot confuse it; subprocess runs are checked
    in their tests with KernelObjects.
    """
    if "root" not in request.keywords or not IS_ROOT:
        yield
        return
    before = bpf_fds()
    yield
    left = bpf_fds() - before
    assert not left, f"BPF objects still open after the test: {sorted(left)}"


@pytest.fixture(scope="session")
def rootfs():
    import shutil

    from support.podman import busybox_rootfs

    path = busybox_rootfs()
    yield path
    shutil.rmtree(path, ignore_errors=True)
