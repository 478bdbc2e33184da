"""The host as a node pod sees it: paths whose absolute links are followed within the host's root (a root of
links made here), and cgroups read in the host's cgroup namespace by a process that has one of its own (a
real cgroup namespace, made with unshare)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gadgetbook.targets.host_view import HostView

pytestmark = pytest.mark.root


class RootedView(HostView):
    """A HostView whose host root is a folder of this test's (a pod reaches the host's as /proc/PID/root)."""

    def __init__(self, root: Path) -> None:
        super().__init__(os.getpid())
        self.root = root


def test_absolute_links_are_followed_within_the_hosts_root(tmp_path):
    (tmp_path / "usr/src/headers-amd64/include").mkdir(parents=True)
    (tmp_path / "usr/lib/kbuild/scripts").mkdir(parents=True)
    (tmp_path / "usr/src/headers-amd64/scripts").symlink_to("../../lib/kbuild/scripts")  # relative, as Debian's
    (tmp_path / "lib/modules/6.1.0").mkdir(parents=True)
    (tmp_path / "lib/modules/6.1.0/build").symlink_to("/usr/src/headers-amd64")  # absolute: the host's /usr
    (tmp_path / "lib/modules/6.1.0/loop").symlink_to("/lib/modules/6.1.0/loop")
    view = RootedView(tmp_path)
    assert view.path("/lib/modules/6.1.0/build") == tmp_path / "usr/src/headers-amd64"
    assert view.path("/lib/modules/6.1.0/build/scripts") == tmp_path / "usr/lib/kbuild/scripts"
    assert view.path("/lib/modules/6.1.0/build/../../etc") == tmp_path / "usr/etc"  # `..` of where the link led
    assert view.path("/lib/modules/6.1.0/source") == tmp_path / "lib/modules/6.1.0/source"  # missing: as named
    with pytest.raises(Exception, match="too many levels of links"):
        view.path("/lib/modules/6.1.0/loop")


def test_on_the_host_paths_are_as_named():
    assert HostView(None).path("/lib/modules/x/build") == Path("/lib/modules/x/build")


def test_cgroups_of_processes_are_read_in_the_hosts_namespace_from_another():
    root = HostView(None).cgroup2()
    assert root is not None
    ours = HostView(None).cgroup_paths([os.getpid()])[os.getpid()]
    inner = root / ours.lstrip("/") / f"gb-view-{uuid.uuid4().hex[:8]}"
    inner.mkdir()
    code = ("import json, os, sys\n"
            "from gadgetbook.targets.host_view import HostView\n"
            "host = int(sys.argv[1])\n"
            "direct = open(f'/proc/{host}/cgroup').read().split('0::')[1].strip()\n"
            "through = HostView(host).cgroup_paths([host, os.getpid()])\n"
            "print(json.dumps({'pid': os.getpid(), 'direct': direct, 'through': through}))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        # The shell joins the new cgroup, then unshare gives Python a cgroup namespace rooted there.
        out = subprocess.run(["sh", "-c", f'echo $$ > {inner}/cgroup.procs && exec unshare --cgroup "$@"', "sh",
                              sys.executable, "-c", code, str(os.getpid())],
                             capture_output=True, text=True, check=True, env=env)
    finally:
        inner.rmdir()
    seen = json.loads(out.stdout)
    assert seen["direct"].startswith("/..")  # what the process itself reads: relative to its own namespace
    assert seen["through"] == {str(os.getpid()): ours, str(seen["pid"]): f"{ours.rstrip('/')}/{inner.name}"}
