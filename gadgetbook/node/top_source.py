"""A run source for a top gadget on this host: reads and clears the kernel's map every interval on its own thread."""

from __future__ import annotations

from gadgetbook.client.run import Batch, concat
from gadgetbook.frames.top import TopDecoder, TopSettings, order_rows, wall_now_ns
from gadgetbook.node.threaded_source import ThreadedSource
from gadgetbook.node.top_session import TopSession


class TopSource(ThreadedSource):
    """One batch per interval: each connection's counts since the previous reading, sorted and cut."""

    def __init__(self, session: TopSession, decoder: TopDecoder, settings: TopSettings, name: str) -> None:
        super().__init__(session, name)
        self.decoder = decoder
        self.settings = settings
        self._start()

    def _read(self) -> Batch | None:
        keys, values = self.session.drain()
        if not len(keys):
            return None
        batch = self.decoder.decode(keys, values, wall_now_ns())
        return order_rows(batch, self.settings.sort, self.settings.max_rows)

    def _wait(self) -> bool:
        return self._stop.wait(self.settings.interval)

    def _combine(self, items: list[Batch]) -> Batch:
        return concat(items, self.decoder.names())
