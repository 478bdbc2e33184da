"""The recorder API's requests carried out on a host's `Recorders`, whatever serves them (the node pod's
jupyter-server, or a local recorder process's unix socket); shapes in `gadgetbook.protocol`."""

from __future__ import annotations

import json

from gadgetbook import protocol
from gadgetbook.errors import GadgetError
from gadgetbook.recorders.service import NotRecorded, Recorders

JSON, ARROW = "application/json", "application/vnd.apache.arrow.stream"
Reply = tuple[int, str, bytes]


def _json(status: int, value) -> Reply:
    return status, JSON, json.dumps(value, default=str).encode()


def _frame(batch: dict, info: dict) -> Reply:
    return 200, ARROW, protocol.encode(batch, list(batch), {protocol.RECORDING_META: json.dumps(info).encode()})


def handle(recorders: Recorders, method: str, rid: str | None, body: bytes | None) -> Reply:
    """One request: (HTTP status, content type, body). Bad requests get 4xx and one sentence."""
    try:
        if method == "GET" and not rid:
            return _json(200, recorders.list())
        if method == "POST" and not rid:
            return _json(200, recorders.start(json.loads(body or b"{}")))
        if method == "GET" and rid:
            return _frame(*recorders.show(rid))
        if method == "DELETE" and rid:
            return _frame(*recorders.stop(rid))
        return _json(405, {"message": f"{method} is not a recorder operation."})
    except NotRecorded as exc:
        return _json(404, {"message": str(exc)})
    except GadgetError as exc:
        return _json(409, {"message": str(exc)})
    except (ValueError, TypeError) as exc:
        return _json(400, {"message": f"Malformed recorder request: {exc}."})
