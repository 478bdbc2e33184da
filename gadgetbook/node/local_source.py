"""A run source on this host: a trace session drained by its own thread, plus the decoder that names containers."""

from __future__ import annotations

import threading

import numpy as np

from gadgetbook.frames.decode import Decoder
from gadgetbook.node.session import TraceSession


class LocalSource:
    """Drains the ring buffer every few milliseconds on a thread of its own, so decoding a
    large batch never keeps the ring from being emptied (that is when events get lost)."""

    def __init__(self, session: TraceSession, decoder: Decoder, name: str, interval: float = 0.002) -> None:
        self.session = session
        self.decoder = decoder
        self.name = name
        self._interval = interval
        self._raw: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._ring = session.ring  # mapped now, before the thread needs it
        self._thread = threading.Thread(target=self._drain, name=f"gadgetbook-ring-{name}", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while not self._stop.is_set():
                events = self.session.read()
                if len(events):
                    with self._lock:
                        self._raw.append(events)
                # Read again at once when the ring was busy; otherwise wait a little.
                if len(events) * self._ring.stride < self.session.ring_bytes // 8:
                    self._stop.wait(self._interval)
        except BaseException as exc:  # handed to the run through poll()
            self._error = exc

    def poll(self):
        if self._error is not None:
            raise self._error
        with self._lock:
            raw, self._raw = self._raw, []
        if not raw:
            return None
        return self.decoder.decode(raw[0] if len(raw) == 1 else np.concatenate(raw))

    def finish(self) -> None:
        """Stop the drain thread and take what the ring still holds."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            events = self.session.read()
            if len(events):
                with self._lock:
                    self._raw.append(events)

    def lost(self) -> int:
        return self.session.lost()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.session.close()
