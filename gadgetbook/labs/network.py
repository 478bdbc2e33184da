"""A private network for lab containers: a bridge in a network namespace of its own, joined through veth pairs.

Nothing of it touches the host's own network namespace (no addresses, routes or firewall rules there),
so the traffic between the containers stays between them; deleting the namespace removes it all.
"""

from __future__ import annotations

import ipaddress
import subprocess
import uuid

from gadgetbook.errors import GadgetError


def _ip(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode:
        raise GadgetError(f"`{' '.join(args)}` failed: {done.stderr.strip()}.")


class LabNetwork:
    """A bridge named br0 inside the network namespace `name`; `attach(pid)` gives a process's netns an address."""

    def __init__(self, subnet: str = "10.213.47.0/24", subnet6: str | None = "fd00:213:47::/64") -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.name = f"gadgetbook-lab-{self.tag}"
        self.subnet = ipaddress.ip_network(subnet)
        self.subnet6 = ipaddress.ip_network(subnet6) if subnet6 else None
        self._hosts = self.subnet.hosts()
        self._hosts6 = self.subnet6.hosts() if self.subnet6 else None
        next(self._hosts)  # .1 stays free (a gateway, were there one)
        if self._hosts6:
            next(self._hosts6)
        self._count = 0
        _ip("ip", "netns", "add", self.name)
        try:
            _ip("ip", "-n", self.name, "link", "set", "lo", "up")
            _ip("ip", "-n", self.name, "link", "add", "br0", "type", "bridge")
            _ip("ip", "-n", self.name, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def attach(self, pid: int, ifname: str = "eth0") -> tuple[str, str | None]:
        """Join the network namespace of `pid` to the bridge; returns its (IPv4, IPv6) addresses."""
        self._count += 1
        bridge_end, peer = f"v{self.tag}b{self._count}", f"v{self.tag}p{self._count}"
        address = str(next(self._hosts))
        address6 = str(next(self._hosts6)) if self._hosts6 else None
        # Made inside the lab's namespace and handed straight to the process's: never in the host's.
        _ip("ip", "-n", self.name, "link", "add", bridge_end, "type", "veth", "peer", "name", peer,
            "netns", str(pid))
        _ip("ip", "-n", self.name, "link", "set", bridge_end, "master", "br0", "up")
        enter = ["nsenter", "-t", str(pid), "-n", "ip"]
        _ip(*enter, "link", "set", peer, "name", ifname)
        _ip(*enter, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", ifname)
        if address6:
            _ip(*enter, "addr", "add", f"{address6}/{self.subnet6.prefixlen}", "dev", ifname, "nodad")
        _ip(*enter, "link", "set", ifname, "up")
        _ip(*enter, "link", "set", "lo", "up")
        return address, address6

    def close(self) -> None:
        """Delete the namespace: the bridge and every veth pair go with it."""
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)

    def __enter__(self) -> LabNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
