"""A run source for a top gadget on this host: reads and clears the kernel's map every interval on its own thread."""

from __future__ import annotations

import threading

from gadgetbook.client.run import Batch, concat
from gadgetbook.frames.top import TopDecoder, TopSettings, order_rows, wall_now_ns
from gadgetbook.node.top_session import TopSession


class TopSource:
    """One batch per interval: each connection's counts since the previous reading, sorted and cut."""

    def __init__(self, session: TopSession, decoder: TopDecoder, settings: TopSettings, name: str) -> None:
        self.session = session
        self.decoder = decoder
        self.settings = settings
        self.name = name
        self._pending: list[Batch] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._tick, name=f"gadgetbook-top-{name}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        keys, values = self.session.drain()
        if not len(keys):
            return
        batch = self.decoder.decode(keys, values, wall_now_ns())
        batch = order_rows(batch, self.settings.sort, self.settings.max_rows)
        with self._lock:
            self._pending.append(batch)

    def _tick(self) -> None:
        try:
            while not self._stop.wait(self.settings.interval):
                self._read()
        except BaseException as exc:  # handed to the run through poll()
            self._error = exc

    def poll(self) -> Batch | None:
        if self._error is not None:
            raise self._error
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return None
        return concat(pending, self.decoder.names())

    def finish(self) -> None:
        """Stop the timer and read the last, partial interval: what the kernel counted is not lost."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self._read()

    def lost(self) -> int:
        return self.session.lost()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.session.close()
