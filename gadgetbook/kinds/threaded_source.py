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

    # Most of what was read and not yet taken (in `_size` units): past it the reader pauses, the kernel's
    # buffer fills and counts what it drops, and this process's memory stays bounded however slow the taker.
    max_backlog: int | None = None

    def __init__(self, obj: BpfObject, name: str) -> None:
        self.obj = obj
        self.name = name
        self._items: list[Any] = []
        self._backlog = 0
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

    def _size(self, item: Any) -> int:
        return 1

    def _take(self) -> None:
        item = self._read()
        if item is not None:
            with self._lock:
                self._items.append(item)
                self._backlog += self._size(item)

    def _loop(self) -> None:
        try:
            while not self._wait():
                if self.max_backlog is not None and self._backlog >= self.max_backlog:
                    if self._stop.wait(0.005):  # until the run takes what waits
                        break
                    continue
                self._take()
        except BaseException as exc:  # handed to the run through poll()
            self._error = exc

    def poll(self):
        if self._error is not None:
            raise self._error
        with self._lock:
            items, self._items, self._backlog = self._items, [], 0
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
