"""Shared fixtures: root-only marking, real containers, and a check that no BPF object outlives a test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.leftovers import bpf_state, describe_programs  # noqa: E402

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config, items):
    # Tests that load BPF need root; CI runs as root, so this skips only on a developer's unprivileged shell.
    skip = pytest.mark.skip(reason="needs root to load eBPF programs")
    for item in items:
        if "root" in item.keywords and not IS_ROOT:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_bpf_left_behind(request):
    """Every root test: the programs and links that appeared during it are gone at its end."""
    if "root" not in request.keywords or not IS_ROOT:
        yield
        return
    progs_before, links_before = bpf_state()
    yield
    progs_after, links_after = bpf_state()
    # Only ids that did not exist before count; other tools may load programs meanwhile.
    ours = progs_after - progs_before
    assert not ours, f"BPF programs left loaded after the test: {describe_programs(ours)}"
    assert not (links_after - links_before), "BPF links left attached after the test"


@pytest.fixture(scope="session")
def rootfs():
    import shutil

    from support.podman import busybox_rootfs

    path = busybox_rootfs()
    yield path
    shutil.rmtree(path, ignore_errors=True)
