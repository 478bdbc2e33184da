"""Real podman containers for tests: busybox root filesystems, no network, removed by id afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

CONF = str(Path(__file__).with_name("containers.conf"))
ENV = {**os.environ, "CONTAINERS_CONF": CONF}


def busybox_rootfs() -> str:
    """A root filesystem with Debian's static busybox and its applets."""
    root = Path(tempfile.mkdtemp(prefix="gadgetbook-rootfs-"))
    for d in ("bin", "tmp", "proc", "sys", "dev", "etc", "data"):
        (root / d).mkdir()
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    return str(root)


class Container:
    """One running podman container; `remove()` deletes it by its id."""

    def __init__(self, rootfs: str, name: str, labels: dict[str, str], script: str,
                 volumes: tuple[str, ...] = (), keep: bool = False, options: tuple[str, ...] = ()) -> None:
        # `keep`: not removed when it exits, so its exit code and name stay known until remove().
        cmd = ["podman", "run", "-d", *(() if keep else ("--rm",)), "--network", "none", "--name", name, *options]
        for k, v in labels.items():
            cmd += ["--label", f"{k}={v}"]
        for v in volumes:  # host:container[:ro]
            cmd += ["-v", v]
        # --rootfs is a switch: the directory stands where the image would.
        cmd += ["--rootfs", rootfs, "/bin/sh", "-c", script]
        self.name = name
        self.id = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=True).stdout.strip()
        self.pid = int(podman("inspect", "--format", "{{.State.Pid}}", self.id))

    def wait(self, timeout: float = 60) -> int:
        """Its exit code, once it has exited."""
        out = subprocess.run(["podman", "wait", self.id], capture_output=True, text=True, env=ENV, check=True,
                             timeout=timeout).stdout
        return int(out.strip().splitlines()[-1])

    def exec(self, *argv: str) -> str:
        return podman("exec", self.id, *argv)

    def remove(self) -> None:
        subprocess.run(["podman", "rm", "-f", "-t", "0", self.id], capture_output=True, env=ENV, check=False)
        for _ in range(50):  # wait until the runtime has really gone
            if not os.path.exists(f"/proc/{self.pid}"):
                return
            time.sleep(0.1)


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=ENV, check=True).stdout.strip()


@contextmanager
def running(rootfs: str, *specs: tuple, volumes: tuple[str, ...] = ()):
    """Containers from (name, labels, script) specs; every one started is removed at the end, even on failure."""
    started: list[Container] = []
    try:
        for name, labels, script in specs:
            started.append(Container(rootfs, name, labels, script, volumes))
        yield started
    finally:
        for c in started:
            c.remove()
