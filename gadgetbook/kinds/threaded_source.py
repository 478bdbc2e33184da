"""The shape every source on this host shares: a thread that reads the kernel, and a poll() that hands
over what it read, decoded, to the run."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from gadgetbook.kernel.gadget import add_to_mntns_filter, lost_events
from gadgetbook.kernel.loader import BpfObject


class ThreadedSource:
    """Subclasses say how to read once (`_read`), how long to wait between reads (`_wait`), and how
    to turn what was read into one batch (`_combine`). The loaded object is freed by `close()`."""

    def __init__(self, obj: BpfObject, name: str, max_pending_bytes: int | None = None) -> None:
        self.obj = obj
        self.name = name
        self._items: list[Any] = []
        self._pending_bytes = 0
        # A node sets a bound: while this much waits for poll(), the thread leaves the kernel's data
        # where it is, and the kernel counts what no longer fits as lost.
        self._max_pending = max_pending_bytes
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=f"gadgetbook-{name}", daemon=True)

    def _start(self) -> None:
        self._thread.start()

    def _read(self) -> Any | None:
        raise NotImplementedError

    def _wait(self) -> bool:
        """Pause before the next read; True when the source is asked to stop."""
        raise NotImplementedError

    def _combine(self, items: list[Any]):
        raise NotImplementedError

    def _take(self) -> None:
        item = self._read()
        if item is not None:
            with self._lock:
                self._items.append(item)
                self._pending_bytes += _nbytes(item)

    def _full(self) -> bool:
        return self._max_pending is not None and self._pending_bytes >= self._max_pending

    def _loop(self) -> None:
        try:
            while not self._wait():
                while self._full() and not self._stop.wait(0.005):
                    pass
                self._take()
        except BaseException as exc:  # handed to the run through poll()
            self._error = exc

    def poll(self):
        if self._error is not None:
            raise self._error
        with self._lock:
            items, self._items = self._items, []
            self._pending_bytes = 0
        return self._combine(items) if items else None

    def finish(self) -> None:
        """Stop the thread and take what the kernel still holds: nothing counted is lost."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self._take()

    def add_mntns(self, mntns_ids: Iterable[int]) -> None:
        """Containers that started during the run join the kernel's filter."""
        add_to_mntns_filter(self.obj, mntns_ids)

    def lost(self) -> int:
        return lost_events(self.obj)

    def _release(self) -> None:
        """What the subclass holds beside the object (mapped memory, perf events)."""

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._release()
        self.obj.close()


def _nbytes(item: Any) -> int:
    """Memory an item holds: an array's bytes, a frame's columns, a batch's arrays."""
    if hasattr(item, "nbytes"):
        n = item.nbytes
        return n() if callable(n) else int(n)
    if isinstance(item, dict):
        return sum(_nbytes(v) for v in item.values())
    return 0
