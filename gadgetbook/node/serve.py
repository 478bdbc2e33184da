"""`gadgetbook-node`: the node pod's server, jupyter-server with the gadgetbook extension, on loopback."""

from __future__ import annotations

import os
import sys


def server_argv(port: int, token: str, root_dir: str = "/") -> list[str]:
    """jupyter-server flags for the node API (kernels stay available for a deep dive on the node)."""
    return [
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.jpserver_extensions=gadgetbook.node.server=True",
        # Kernels of %%node cells whose notebook went away without shutting them down: gone after an idle hour.
        "--MappingKernelManager.cull_idle_timeout=3600",
        "--MappingKernelManager.cull_interval=300",
    ]


def main() -> None:
    """Serve (port and token from the environment, set by the DaemonSet from its Secret; the kubelet
    checks readiness with an HTTP GET on GADGETBOOK_HEALTH_PORT, which starts no process)."""
    from jupyter_server.serverapp import ServerApp

    token = os.environ.get("GADGETBOOK_TOKEN") or _read(os.environ.get("GADGETBOOK_TOKEN_FILE", ""))
    if not token:
        sys.exit("gadgetbook-node: set GADGETBOOK_TOKEN or GADGETBOOK_TOKEN_FILE; refusing to serve without a token.")
    port = int(os.environ.get("GADGETBOOK_PORT", "8765"))
    ServerApp.launch_instance(argv=server_argv(port, token, os.environ.get("GADGETBOOK_ROOT_DIR", "/tmp")))


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


if __name__ == "__main__":
    main()
