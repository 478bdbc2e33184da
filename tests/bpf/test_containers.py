"""Container targeting with real podman containers (runc, cgroupfs, busybox root, no network)."""

import os
import subprocess

import pytest
from support.podman import running
from support.workloads import marker, stop_when

import gadgetbook
from gadgetbook.errors import GadgetError

pytestmark = [pytest.mark.root, pytest.mark.containers]


@pytest.fixture(scope="module")
def two_containers(rootfs):
    tag = marker("t")
    loop = "while true; do cat /data/{m} 2>/dev/null; sleep 0.05; done"
    with running(rootfs, (f"api-{tag}", {"app": "api", "gadgetbook-test": tag}, loop.format(m=f"api-{tag}")),
                 (f"db-{tag}", {"app": "db", "gadgetbook-test": tag}, loop.format(m=f"db-{tag}"))) as (api, db):
        yield api, db, tag


def _host_opens(path: str, times: int = 5) -> None:
    for _ in range(times):
        subprocess.run(["/bin/cat", path], capture_output=True)


def test_selector_keeps_only_the_labelled_container(two_containers, tmp_path):
    api, db, tag = two_containers
    host_marker = str(tmp_path / f"host-{tag}")
    with gadgetbook.start("opensnoop", selector=f"app=api,gadgetbook-test={tag}") as r:
        _host_opens(host_marker)
        df = stop_when(r, lambda df: (df.path == f"/data/api-{tag}").sum() >= 3)
    assert set(df.container) == {api.name}
    assert f"/data/api-{tag}" in set(df.path)
    assert f"/data/db-{tag}" not in set(df.path) and host_marker not in set(df.path)
    assert df.attrs["targets"] == f"containers {api.name}"


def test_container_name_flag(two_containers):
    api, db, tag = two_containers
    with gadgetbook.start("opensnoop", container=db.name) as r:
        db.exec("/bin/sh", "-c", f"cat /data/exec-{tag}; true")
        r.stop()
    df = r.result()
    assert set(df.container) == {db.name}
    assert f"/data/exec-{tag}" in set(df.path)


def test_without_filter_both_containers_and_host_appear(two_containers, tmp_path):
    api, db, tag = two_containers
    host_marker = str(tmp_path / f"host-{tag}")
    with gadgetbook.start("opensnoop") as r:
        _host_opens(host_marker)
        df = stop_when(r, lambda df: {f"/data/api-{tag}", f"/data/db-{tag}"} <= set(df.path))
    by_path = df.drop_duplicates("path").set_index("path").container
    assert by_path[f"/data/api-{tag}"] == api.name
    assert by_path[f"/data/db-{tag}"] == db.name
    assert by_path[host_marker] == ""


def test_execs_in_a_container_are_attributed_to_it(two_containers):
    api, _, tag = two_containers
    with gadgetbook.start("execsnoop", selector=f"app=api,gadgetbook-test={tag}") as r:
        api.exec("/bin/echo", f"exec-{tag}")
        r.stop()
    df = r.result()
    row = df[df.args == f"/bin/echo exec-{tag}"].iloc[0]
    assert row.container == api.name
    assert set(df.container) == {api.name}
    assert os.getpid() not in set(df.pid)


def test_selector_matching_nothing_runs_nothing(two_containers):
    with pytest.raises(GadgetError, match="No running container on this host matches -l app=nothing-here"):
        gadgetbook.start("opensnoop", selector="app=nothing-here")
