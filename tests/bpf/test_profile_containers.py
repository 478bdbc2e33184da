"""profile with a container filter: two busy podman containers, only the chosen one is sampled."""

import os
from pathlib import Path

import pytest
from support.hotloop import user_share
from support.podman import running
from support.workloads import marker

import gadgetbook

pytestmark = [pytest.mark.root, pytest.mark.containers]


@pytest.fixture(scope="module")
def two_busy(rootfs):
    tag = marker("p")
    busy = "while true; do :; done"
    with running(rootfs, (f"hot-{tag}", {"app": "hot", "gadgetbook-test": tag}, busy),
                 (f"other-{tag}", {"app": "other", "gadgetbook-test": tag}, busy)) as (hot, other):
        yield hot, other, tag


def test_selector_profiles_one_container_only(two_busy):
    hot, other, tag = two_busy
    prof = gadgetbook.run("profile", timeout=2, frequency=99, selector=f"app=hot,gadgetbook-test={tag}")
    df = prof.samples
    assert prof.total >= 50
    assert set(df.container) == {hot.name}
    assert hot.pid in set(df.pid) and other.pid not in set(df.pid)
    assert set(df.comm) <= {"sh"}
    # Busybox is static and stripped: its frames are marked unknown, with addresses kept.
    assert df.user_addresses.str.startswith("0x").any()
    assert prof.attrs["targets"] == f"containers {hot.name}"
    # Color by container: the tree knows which container each frame's samples came from.
    tree = prof.tree(container=True)
    assert hot.name in set(tree.containers.tolist())


def test_without_filter_both_containers_appear(two_busy):
    hot, other, tag = two_busy
    prof = gadgetbook.run("profile", timeout=2, frequency=99)
    names = set(prof.samples.container.astype(str))
    assert {hot.name, other.name} <= names
    assert f"{hot.name};sh" in prof.folded(process=True).replace("\n", "") or prof.stacks(container=True)[
        "stack"].str.startswith(f"{hot.name};sh").any()


def test_symbols_of_a_program_inside_a_container(tmp_path):
    """The program's file exists only in the container's root filesystem: its frames are named anyway."""
    import shutil

    from support import hotloop
    from support.podman import busybox_rootfs

    root = busybox_rootfs()
    try:
        hotloop.build(Path(root) / "data", static=True)
        tag = marker("sym")
        with running(root, (f"sym-{tag}", {"gadgetbook-test": tag}, "exec /data/hotloop 30")) as (box,):
            prof = gadgetbook.run("profile", timeout=2, frequency=99, user_only=True,
                                  selector=f"gadgetbook-test={tag}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    df = prof.samples
    assert set(df.container) == {box.name} and set(df.comm) == {"hotloop"}
    assert not os.path.exists("/data/hotloop")  # not on the host: named from inside the container
    assert df["count"].sum() >= 20
    assert user_share(df, "main;hot_mid;hot_leaf") >= 0.8, df[["user_stack", "count"]].to_string()
