"""Tables a run hands over beside its events: readings of a program's maps, kept per source and merged by the run.

A source that has tables offers `tables()` (every reading), `take_tables()` (readings not taken yet, which a
node streams to its client) and `latest_tables()` (the newest reading of each, for a live view).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from gadgetbook.run_handle import Batch, concat


class TableReadings:
    """Readings of named tables, in the order they were made; safe to add to from a reading thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readings: list[tuple[str, Batch]] = []
        self._taken = 0

    def add(self, name: str, batch: Batch) -> None:
        with self._lock:
            self._readings.append((name, batch))

    def add_all(self, tables: dict[str, Batch]) -> None:
        for name, batch in tables.items():
            self.add(name, batch)

    def tables(self) -> dict[str, Batch]:
        with self._lock:
            readings = list(self._readings)
        return _merge(readings)

    def take_tables(self) -> list[tuple[str, Batch]]:
        with self._lock:
            fresh, self._taken = self._readings[self._taken:], len(self._readings)
        return fresh

    def latest_tables(self) -> dict[str, Batch]:
        with self._lock:
            readings = list(self._readings)
        latest: dict[str, Batch] = {}
        for name, batch in readings:
            latest[name] = batch
        return latest


class TableSource:
    """A source's side of its tables, kept in `self._readings` (a TableReadings)."""

    _readings: TableReadings

    def tables(self) -> dict[str, Batch]:
        return self._readings.tables()

    def take_tables(self) -> list[tuple[str, Batch]]:
        return self._readings.take_tables()

    def latest_tables(self) -> dict[str, Batch]:
        return self._readings.latest_tables()


def _merge(readings: Iterable[tuple[str, Batch]]) -> dict[str, Batch]:
    parts: dict[str, list[Batch]] = {}
    for name, batch in readings:
        parts.setdefault(name, []).append(batch)
    return {name: concat(batches, list(batches[0])) for name, batches in parts.items()}


def merged_tables(sources: Iterable[object], latest: bool = False) -> dict[str, Batch]:
    """The tables of every source that has some, one per name (sources' rows carry their node)."""
    readings: list[tuple[str, Batch]] = []
    for src in sources:
        get = getattr(src, "latest_tables" if latest else "tables", None)
        if get is not None:
            readings.extend(get().items())
    return _merge(readings)
