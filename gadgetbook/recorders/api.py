"""The recorder API's requests carried out on a host's `Recorders`, whatever serves them (the node pod's
jupyter-server, or a local recorder process's unix socket); shapes in `gadgetbook.protocol`."""

from __future__ import annotations

import json
from collections.abc import Callable

from gadgetbook import protocol
from gadgetbook.errors import GadgetError
from gadgetbook.recorders.service import NotRecorded, Recorders

JSON = "application/json"
Reply = tuple[int, str, bytes]


def _allowed(allow: Callable[[dict], None], target: dict) -> bool:
    try:
        allow(target)
        return True
    except GadgetError:
        return False


def _json(status: int, value) -> Reply:
    return status, JSON, json.dumps(value, default=str).encode()


def _frame(batch: dict, info: dict) -> Reply:
    # The recording's facts ride in the frame's header (JSON): numbers, names and times as text.
    header = json.loads(json.dumps(info, default=str))
    return 200, protocol.FRAME_TYPE, protocol.pack(protocol.Frame(header, batch))


def handle(recorders: Recorders, method: str, rid: str | None, body: bytes | None,
           allow: Callable[[dict], None] | None = None) -> Reply:
    """One request: (HTTP status, content type, body). Bad requests get 4xx and one sentence.

    `allow(target)` (a node pod's) raises, in one sentence with an HTTP status, when the caller may not
    trace what a recording's target names: a start is refused, a list leaves those recordings out."""
    allow = allow or (lambda target: None)
    try:
        if method == "GET" and not rid:
            return _json(200, [r for r in recorders.list() if _allowed(allow, r["target"])])
        if method == "POST" and not rid:
            request = json.loads(body or b"{}")
            allow(request.get("target") or {})
            return _json(200, recorders.start(request))
        if method in ("GET", "DELETE") and rid:
            allow(recorders.get(rid).target.wire())
            return _frame(*(recorders.show(rid) if method == "GET" else recorders.stop(rid)))
        return _json(405, {"message": f"{method} is not a recorder operation."})
    except NotRecorded as exc:
        return _json(404, {"message": str(exc)})
    except GadgetError as exc:
        return _json(getattr(exc, "status", 409), {"message": str(exc)})
    except (ValueError, TypeError) as exc:
        return _json(400, {"message": f"Malformed recorder request: {exc}."})
