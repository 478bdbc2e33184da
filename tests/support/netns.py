"""Two network namespaces joined by a veth pair, on a private subnet: hosts of the tests' own for real traffic."""

from __future__ import annotations

import os
import subprocess
import uuid

SUBNET = "10.213.48"  # only inside the two namespaces; nothing on the host uses it
SUBNET6 = "fd00:213:48::"


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


class NetnsPair:
    """Namespaces `a` (10.213.48.1, fd00:213:48::1) and `b` (.2, ::2); `close()` deletes both and the veth."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.a, self.b = f"gadgetbook-a-{tag}", f"gadgetbook-b-{tag}"
        self.addr_a, self.addr_b = f"{SUBNET}.1", f"{SUBNET}.2"
        self.addr6_a, self.addr6_b = f"{SUBNET6}1", f"{SUBNET6}2"
        self.created: list[str] = []
        try:
            for ns in (self.a, self.b):
                _run("ip", "netns", "add", ns)
                self.created.append(ns)
            # Made in `a` with its peer put straight into `b`: the host's namespace never holds it.
            _run("ip", "-n", self.a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", self.b)
            for ns, addr, addr6 in ((self.a, self.addr_a, self.addr6_a), (self.b, self.addr_b, self.addr6_b)):
                _run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "veth0")
                _run("ip", "-n", ns, "addr", "add", f"{addr6}/64", "dev", "veth0", "nodad")
                _run("ip", "-n", ns, "link", "set", "veth0", "up")
                _run("ip", "-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def inode(self, ns: str) -> int:
        """The namespace id the kernel reports (the inode behind /run/netns/NAME)."""
        return os.stat(f"/run/netns/{ns}").st_ino

    def popen(self, ns: str, *argv: str, **kw) -> subprocess.Popen:
        """A process inside `ns`: `ip netns exec` execs it in place, so the pid is the program's own."""
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)

    def close(self) -> None:
        for ns in self.created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self.created = []
