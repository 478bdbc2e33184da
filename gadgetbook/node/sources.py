"""Opening a gadget on this host as a run source, by the gadget's kind."""

from __future__ import annotations

from typing import Any

from gadgetbook.catalog.spec import GadgetSpec
from gadgetbook.errors import GadgetError
from gadgetbook.frames.decode import Decoder
from gadgetbook.node.local_source import LocalSource
from gadgetbook.node.session import TraceSession
from gadgetbook.targets.local import LocalContainers


def decoder_for(spec: GadgetSpec, node: str, containers) -> Any:
    """The decoder of a gadget's kind: its columns, their dtypes, and how raw readings become them."""
    if spec.kind == "trace":
        return Decoder(spec, node, containers)
    if spec.kind == "top":
        from gadgetbook.frames.top import TopDecoder

        return TopDecoder(spec, node, containers)
    if spec.kind == "profile":
        from gadgetbook.node.profile_source import ProfileColumns

        return ProfileColumns()
    raise GadgetError(f"{spec.name} is a {spec.kind!r} gadget, which this installation cannot run.")


def open_local(spec: GadgetSpec, params: dict[str, Any], *, mntns_ids: set[int] | None, pid: int | None,
               ring_bytes: int, containers: LocalContainers, node: str) -> tuple[Any, Any]:
    """The source that feeds a Run, and the decoder whose columns the Run reports."""
    decoder = decoder_for(spec, node, containers)
    if spec.kind == "trace":
        session = TraceSession(spec, params, mntns_ids=mntns_ids, pid=pid, ring_bytes=ring_bytes)
        return LocalSource(session, decoder, node), decoder
    if spec.kind == "top":
        from gadgetbook.frames.top import top_settings
        from gadgetbook.node.top_session import TopSession
        from gadgetbook.node.top_source import TopSource

        settings = top_settings(spec, params, decoder.names())  # bad settings fail before anything loads
        session = TopSession(spec, params, mntns_ids=mntns_ids, pid=pid)
        return TopSource(session, decoder, settings, node), decoder
    if spec.kind == "profile":
        from gadgetbook.node.profile_session import ProfileSession
        from gadgetbook.node.profile_source import ProfileSource

        session = ProfileSession(spec, params, mntns_ids=mntns_ids, pid=pid)
        return ProfileSource(session, containers, node, addresses=bool(params.get("addresses"))), decoder
    raise GadgetError(f"{spec.name} is a {spec.kind!r} gadget, which this installation cannot run.")
