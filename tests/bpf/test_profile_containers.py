"""profile with a container filter: two busy podman containers, only the chosen one is sampled."""

import pytest
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
