"""The network lab's app: two web servers, a DNS server that names them, and two clients, in busybox containers
under podman on a private LabNetwork. Notebooks and tests start it, investigate it, and remove it whole."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from gadgetbook.labs.network import LabNetwork
from gadgetbook.labs.podman import PYTHON_ENV, LabContainer, busybox_rootfs, python_volumes, remove_all, unique_name

DOMAIN = "lab.test"
WEB_PORT, API_PORT = 8080, 9090
_FETCH = "wget -q -O /dev/null http://{}/"
# busybox's wget cannot resolve names (it is static: no NSS); its nslookup asks the DNS server itself.
_LOOKUP = "$(nslookup {name} | sed -n 's/^Address: \\([0-9.]*\\)$/\\1/p' | tail -n 1)"


class NetworkLab:
    """`web` and `api` serve HTTP; `dns` answers for web.lab.test and api.lab.test (NXDOMAIN otherwise);
    `client` looks both names up and fetches from both, `worker` looks up api and fetches from it. Every
    container carries `lab=<tag>` (the `selector`) and `app=<role>`.

    `worker_extra` is shell run in the worker's loop as well (a lab that behaves differently, to compare).
    Use it as a context manager, or call `close()`: containers by id, the network namespace, the files.
    """

    def __init__(self, subnet: str = "10.213.50.0/24", subnet6: str | None = None, worker_extra: str = "",
                 interval: float = 0.2) -> None:
        self.tag = unique_name("netlab")
        self.selector = f"lab={self.tag}"
        self.containers: dict[str, LabContainer] = {}
        self.addresses: dict[str, str] = {}
        self._files = Path(tempfile.mkdtemp(prefix="gadgetbook-lab-files-"))
        self.rootfs = busybox_rootfs()
        self.net = LabNetwork(subnet=subnet, subnet6=subnet6)
        try:
            self._start(worker_extra, interval)
        except BaseException:
            self.close()
            raise

    def name(self, role: str) -> str:
        return f"{role}.{DOMAIN}"

    def _container(self, role: str, script: str, **kwargs) -> LabContainer:
        c = LabContainer(self.rootfs, f"{role}-{self.tag[-8:]}", script, {"app": role, "lab": self.tag}, **kwargs)
        self.containers[role] = c
        self.addresses[role], _ = self.net.attach(c.pid)
        return c

    def _start(self, worker_extra: str, interval: float) -> None:
        self._container("web", f"httpd -f -p {WEB_PORT} -h /www")
        self._container("api", f"httpd -f -p {API_PORT} -h /www")
        from gadgetbook.labs import dns_server

        shutil.copy(dns_server.__file__, self._files / "dns_server.py")
        records = [f"{self.name(r)}={self.addresses[r]}" for r in ("web", "api")]
        self._container("dns", f"exec python3 /lab/dns_server.py --port 53 {' '.join(records)}",
                        volumes=[*python_volumes(), (str(self._files), "/lab")], env=PYTHON_ENV)
        (self._files / "resolv.conf").write_text(f"nameserver {self.addresses['dns']}\n")
        resolv = [(str(self._files / "resolv.conf"), "/etc/resolv.conf")]
        web, api = _LOOKUP.format(name=self.name("web")), _LOOKUP.format(name=self.name("api"))
        self._container("client", f"sleep 1; while true; do {_FETCH.format(web + f':{WEB_PORT}')}; "
                                  f"{_FETCH.format(api + f':{API_PORT}')}; sleep {interval}; done", volumes=resolv)
        extra = f" {worker_extra};" if worker_extra else ""
        self._container("worker", f"sleep 1; while true; do {_FETCH.format(api + f':{API_PORT}')};{extra} "
                                  f"sleep {interval * 2}; done", volumes=resolv)

    def close(self) -> None:
        remove_all(self.containers.values())
        self.containers.clear()
        self.net.close()
        shutil.rmtree(self.rootfs, ignore_errors=True)
        shutil.rmtree(self._files, ignore_errors=True)

    def __enter__(self) -> NetworkLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
