"""A run source on this host: a trace session drained by its own thread, plus the decoder that names containers."""

from __future__ import annotations

import numpy as np

from gadgetbook.frames.decode import Decoder
from gadgetbook.node.session import TraceSession
from gadgetbook.node.threaded_source import ThreadedSource


class LocalSource(ThreadedSource):
    """Drains the ring buffer every few milliseconds on a thread of its own, so decoding a
    large batch never keeps the ring from being emptied (that is when events get lost)."""

    def __init__(self, session: TraceSession, decoder: Decoder, name: str, interval: float = 0.002) -> None:
        super().__init__(session, name)
        self.decoder = decoder
        self._interval = interval
        self._ring = session.ring  # mapped now, before the thread needs it
        self._busy = False
        self._start()

    def _read(self):
        events = self.session.read()
        # Read again at once when the ring was busy; otherwise wait a little.
        self._busy = len(events) * self._ring.stride >= self.session.ring_bytes // 8
        return events if len(events) else None

    def _wait(self) -> bool:
        return self._stop.is_set() if self._busy else self._stop.wait(self._interval)

    def _combine(self, items: list[np.ndarray]):
        return self.decoder.decode(items[0] if len(items) == 1 else np.concatenate(items))
