"""Draining a BPF ring buffer of fixed-size events through mmap, in bulk, into numpy arrays."""

from __future__ import annotations

import mmap

import numpy as np

from gadgetbook.errors import GadgetError

_HEADER = 8  # struct bpf_ringbuf_hdr: u32 len (+ busy/discard bits), u32 page offset
_BUSY = 1 << 31
_DISCARD = 1 << 30


class RingReader:
    """Reads the events a BPF ring buffer holds without a callback per record.

    The consumer position lives in the first page (read-write); the producer
    position in the next page, followed by the data area that the kernel maps
    twice back to back, so a record that wraps still reads contiguously.
    Records of one gadget all have the same size, so the pending region is
    one strided numpy view: copy it out, then release it by moving the
    consumer position.
    """

    def __init__(self, map_fd: int, ring_bytes: int, event: np.dtype) -> None:
        page = mmap.PAGESIZE
        self.event = event
        self.ring_bytes = ring_bytes
        self.stride = (_HEADER + event.itemsize + 7) & ~7
        self._consumer_map = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        # Populated up front: faulting pages in during the first drains would cost more than the drain.
        self._data_map = mmap.mmap(map_fd, page + 2 * ring_bytes, mmap.MAP_SHARED | mmap.MAP_POPULATE,
                                   mmap.PROT_READ, offset=page)
        self._consumer = np.frombuffer(self._consumer_map, dtype="<u8", count=1)
        self._producer = np.frombuffer(self._data_map, dtype="<u8", count=1)
        self._page = page
        self.discarded = 0

    def pending(self) -> int:
        """Bytes written by the kernel and not yet read."""
        return int(self._producer[0]) - int(self._consumer[0])

    def read(self) -> np.ndarray:
        """Copy out every committed event and release its space; returns a (possibly empty) array."""
        consumer = int(self._consumer[0])
        count = (int(self._producer[0]) - consumer) // self.stride
        if count <= 0:
            return np.empty(0, dtype=self.event)
        start = self._page + (consumer & (self.ring_bytes - 1))
        lengths = np.ndarray(count, dtype="<u4", buffer=self._data_map, offset=start, strides=(self.stride,))
        busy = np.flatnonzero(lengths & _BUSY)
        if len(busy):
            # Stop at the first record still being written; later ones wait their turn. When that is
            # the very first record (a producer on another CPU between reserve and submit), there is
            # nothing to take yet: the next read gets it.
            count = int(busy[0])
            if count == 0:
                return np.empty(0, dtype=self.event)
            lengths = lengths[:count]
        sizes = lengths & ~np.uint32(_BUSY | _DISCARD)
        if count and not (sizes == self.event.itemsize).all():
            raise GadgetError(
                "The ring buffer holds a record of an unexpected size; "
                "the gadget's object and its event struct disagree."
            )
        kept = (lengths & _DISCARD) == 0
        # One flat copy (memcpy speed), then a strided view of the events in it;
        # copying a structured view field by field would be several times slower.
        block = np.frombuffer(self._data_map, dtype=np.uint8, count=count * self.stride, offset=start).copy()
        self._consumer[0] = consumer + count * self.stride
        events = np.ndarray(count, dtype=self.event, buffer=block, offset=_HEADER, strides=(self.stride,))
        if not kept.all():
            events = events[kept]
        self.discarded += count - len(events)
        return events

    def close(self) -> None:
        # numpy views pin the buffers: drop them before closing the maps.
        self._consumer = self._producer = None
        for m in (self._consumer_map, self._data_map):
            try:
                m.close()
            except BufferError:
                pass
