"""The trace kind: one row per event, drained from the gadget's ring buffer by a thread of its own."""

from __future__ import annotations

import functools
import os
import select
import time
from typing import Any

import numpy as np

from gadgetbook.frames.decode import COMMON_COLUMNS, Decoder, NoContainers, column_docs
from gadgetbook.kernel.gadget import DEFAULT_RING_BYTES, EVENTS_MAP, load_gadget
from gadgetbook.kinds.base import Kind
from gadgetbook.kinds.threaded_source import ThreadedSource


class TraceKind(Kind):
    name = "trace"

    @functools.cached_property
    def _decoder(self) -> Decoder:
        return Decoder(self.spec, "", NoContainers())

    def columns(self) -> list[str]:
        return self._decoder.names()

    def empty(self):
        return self._decoder.empty()

    @property
    def categorical(self) -> frozenset[str]:
        return self._decoder.categorical

    def own_columns(self) -> tuple:
        return tuple(c for c in self.spec.event_columns if not c.hidden) if self.spec is not None else ()

    def describe_columns(self) -> list[str]:
        lines = [f"  {', '.join(COMMON_COLUMNS)} (common to all trace gadgets), then:"]
        return lines + [f"  {name:<22} {doc}" for name, doc in column_docs(c for c in self.spec.event_columns
                                                                          if not c.hidden)]

    def open(self, params: dict[str, Any], *, mntns_ids, pid, ring_bytes, containers, node) -> TraceSource:
        self.check(params)
        obj = load_gadget(str(self.spec.object_path), self.spec.hooks, self.spec.rodata(params),
                          mntns_ids=mntns_ids, pid=pid, ring_bytes=ring_bytes or DEFAULT_RING_BYTES)
        try:
            return TraceSource(obj, ring_bytes or DEFAULT_RING_BYTES, Decoder(self.spec, node, containers), node)
        except BaseException:
            obj.close()
            raise


class TraceSource(ThreadedSource):
    """Drains the ring buffer on a thread of its own, so decoding a large batch never keeps the ring from
    being emptied (that is when events get lost). It reads every `interval` seconds, and at once when the
    kernel wakes it: the gadgets wake the reader only when a sixteenth of the ring is waiting (see
    gadget_submit in gadget.h), so a steady trickle costs no wakeup and a burst is read before it fills."""

    max_backlog = 2_000_000  # events read and not yet decoded by the run

    def _size(self, item: np.ndarray) -> int:
        return len(item)

    def __init__(self, obj, ring_bytes: int, decoder: Decoder, name: str, interval: float = 0.02) -> None:
        from gadgetbook.kernel.ring import RingReader  # numpy's import waits until the programs are attached

        super().__init__(obj, name)
        self.decoder = decoder
        self.ring_bytes = ring_bytes
        self._interval = interval
        self._ring = RingReader(obj.map_fd(EVENTS_MAP), ring_bytes, decoder.spec.event_dtype)
        # Edge-triggered: epoll reports the kernel's wakeups only, not every record that is waiting.
        self._epoll = select.epoll()
        self._epoll.register(obj.map_fd(EVENTS_MAP), select.EPOLLIN | select.EPOLLET)
        self._stop_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._stop_fd, select.EPOLLIN)
        self._busy = False
        self._start()

    def _read(self):
        events = self._ring.read()
        # Read again at once when the ring was busy; otherwise wait for the timer or a wakeup.
        self._busy = len(events) * self._ring.stride >= self.ring_bytes // 8
        return events if len(events) else None

    def _wait(self) -> bool:
        if not self._busy and not self._stop.is_set():
            self._epoll.poll(self._interval)
        return self._stop.is_set()

    def _wake(self) -> None:
        if self._stop_fd >= 0:
            os.eventfd_write(self._stop_fd, 1)

    def _take_last(self, patience: float = 1.0) -> None:
        # A program that was running when the links went may still be writing its record (the reader
        # stops at a busy one): read until the ring is empty; that takes microseconds, `patience` at most.
        deadline = time.monotonic() + patience
        self._take()
        while self._ring.pending() and time.monotonic() < deadline:
            time.sleep(0.001)
            self._take()

    def _combine(self, items: list[np.ndarray]):
        return self.decoder.decode(items[0] if len(items) == 1 else np.concatenate(items))

    def _release(self) -> None:
        self._ring.close()
        self._epoll.close()
        os.close(self._stop_fd)
        self._stop_fd = -1
