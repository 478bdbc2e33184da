"""The client of the recorder API: one host's recordings through a NodeLink (a node pod over port-forward,
or a local recorder process over its unix socket); the same calls either way."""

from __future__ import annotations

import json
from typing import Any

from gadgetbook import protocol
from gadgetbook.client.node_link import NodeLink


class RecorderLink:
    """The recordings of one host."""

    def __init__(self, link: NodeLink) -> None:
        self.link = link
        self.node = link.node

    def list(self) -> list[dict[str, Any]]:
        return self.link.get(protocol.RECORDERS_PATH)

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(request).encode()
        return json.loads(self.link.request("POST", protocol.RECORDERS_PATH, body, timeout=60))

    def show(self, rid: str) -> tuple[dict, dict[str, Any]]:
        return _frame(self.link.request("GET", f"{protocol.RECORDERS_PATH}/{rid}", timeout=60))

    def stop(self, rid: str) -> tuple[dict, dict[str, Any]]:
        return _frame(self.link.request("DELETE", f"{protocol.RECORDERS_PATH}/{rid}", timeout=60))


def _frame(data: bytes) -> tuple[dict, dict[str, Any]]:
    frame = protocol.unpack(data)
    return frame.columns, frame.header
