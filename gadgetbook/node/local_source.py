"""A run source on this host: a trace session plus the decoder that names containers."""

from __future__ import annotations

from gadgetbook.frames.decode import Decoder
from gadgetbook.node.session import TraceSession


class LocalSource:
    def __init__(self, session: TraceSession, decoder: Decoder, name: str) -> None:
        self.session = session
        self.decoder = decoder
        self.name = name

    def poll(self):
        events = self.session.read()
        return self.decoder.decode(events) if len(events) else None

    def lost(self) -> int:
        return self.session.lost()

    def close(self) -> None:
        self.session.close()
