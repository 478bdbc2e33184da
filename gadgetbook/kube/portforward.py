"""Sockets to a port inside a pod, through the API server's port-forward (never a NodePort)."""

from __future__ import annotations

import socket

from gadgetbook.kube.api import Kube, call


def pod_connector(kube: Kube, namespace: str, pod: str, port: int):
    """A function that opens a new connection to `port` in the pod each time it is called."""
    from kubernetes.stream import portforward

    def connect() -> socket.socket:
        pf = call(f"port-forwarding to {namespace}/{pod}:{port}", portforward,
                  kube.core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port),
                  _request_timeout=None)
        return pf.socket(port)

    return connect
