"""The run handle: drains gadget sources on a timer, hands out batches, keeps counters, stops cleanly."""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from gadgetbook.frames.coded import Coded

if TYPE_CHECKING:
    from gadgetbook.kinds.base import Kind

Batch = dict[str, "np.ndarray | Coded"]
_END = object()
MAX_WAITING = 16  # batches a streamed run keeps for a live consumer that lags (about four seconds of them)


class Source(Protocol):
    """Where a run's events come from: this host's kernel, or a node of a cluster."""

    name: str

    def poll(self) -> Batch | None: ...
    def finish(self) -> None: ...
    def lost(self) -> int: ...
    def close(self) -> None: ...


@dataclass
class Counters:
    events: int = 0
    lost: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    ended: float | None = None

    @property
    def lost_total(self) -> int:
        return sum(self.lost.values())

    @property
    def elapsed(self) -> float:
        return (self.ended or time.time()) - self.started if self.started else 0.0


class Run:
    """A gadget running until its timeout, `stop()`, or the end of its sources.

    A background thread polls every source (each drains its kernel or its
    connection on its own) and groups what arrives into batches a few times a
    second, so consumers handle batches, never single events.
    """

    def __init__(
        self,
        gadget: str,
        params: dict[str, Any],
        sources: list[Source],
        columns: list[str],
        *,
        timeout: float | None = None,
        targets: str = "",
        schema: Batch | None = None,
        categorical: frozenset[str] = frozenset(),
        poll_interval: float = 0.05,
        batch_interval: float = 0.25,
        kind: Kind | None = None,
        keep_batches: bool = True,
    ) -> None:
        self.gadget = gadget
        self.params = params
        self.sources = sources
        self.columns = columns
        self.timeout = timeout
        self.targets = targets
        self.schema = schema
        self.categorical = categorical
        self.kind = kind  # builds the result from the DataFrame and does what follows a run
        self.save_path: str | None = None
        self.saved_to: Path | None = None  # where --save wrote the recording
        self.save_notice: str | None = None  # the sentence that says so, when not where it was asked
        self.mode = "this host"  # where it runs, for headers: "this host" or "cluster CONTEXT, namespace NS"
        # Sentences about targets that ended during the run (a process, a container, a pod), asked at its end.
        self.exits: Callable[[], list[str]] | None = None
        self.counters = Counters(started=time.time())
        self._poll_interval = poll_interval
        self._batch_interval = batch_interval
        self._stop = threading.Event()
        self._queue = Handoff()
        # A node streams its batches to the client and keeps none (its memory stays flat however
        # long the run); the client keeps them for the DataFrame.
        self.keep_batches = keep_batches
        self.batches_seen: list[Batch] = []
        # Tables the sources hand over beside events (a program's maps), merged when the run ends.
        self.tables: dict[str, Batch] = {}
        # A run saved as a dataset (`stream_to`): batches go to disk as they come, and only a bounded
        # tail stays in memory, for the live view and the result.
        self.writer = None
        self.tail_rows = 0
        self._tail: collections.deque[Batch] = collections.deque()
        self._tail_count = 0
        self._sink_lock = threading.Lock()
        self._deadline = time.monotonic() + timeout if timeout else None
        self._thread = threading.Thread(target=self._pump, name=f"gadgetbook-{gadget}", daemon=True)
        self._thread.start()

    # -- the pump --

    def _pump(self) -> None:
        pending: list[Batch] = []
        last_flush = time.monotonic()
        try:
            while not self._stop.is_set():
                if self._deadline and time.monotonic() >= self._deadline:
                    break
                got = self._poll_all(pending)
                now = time.monotonic()
                if pending and now - last_flush >= self._batch_interval:
                    self._flush(pending)
                    last_flush = now
                if not got:
                    self._stop.wait(self._poll_interval)
            for src in self.sources:
                src.finish()  # the last events the kernel handed over
            self._poll_all(pending)
            self._flush(pending)
            self.tables = self.live_tables(latest=False)
        except BaseException as exc:  # surfaced to the consumer, not lost in a thread
            self._queue.put(exc)
        finally:
            self._close_sources()
            self.counters.ended = time.time()
            self._queue.put(_END)

    def end_at(self, deadline: float | None) -> None:
        """End the run at this `time.monotonic()` instant instead of at its own timeout (runs that started
        one after another then end together); None: only when stopped."""
        self._deadline = deadline

    def join(self) -> None:
        """Block until the run has ended, leaving its batches to whoever reads them."""
        self._thread.join()

    def add_source(self, source: Source) -> None:
        """A node that joins a live run (a matching pod started there)."""
        self.sources = [*self.sources, source]

    def _poll_all(self, pending: list[Batch]) -> bool:
        got = False
        for src in self.sources:
            if src.name in self.counters.errors:
                continue
            try:
                batch = src.poll()
            except Exception as exc:  # one failing source ends only its own part of the run
                self.counters.errors[src.name] = str(exc) or type(exc).__name__
                try:
                    src.finish()  # and stops reading: nothing would take what it read
                except Exception:  # noqa: S110 - it has failed already; its error is recorded
                    pass
                continue
            if batch is not None and rows(batch):
                pending.append(batch)
                got = True
        return got

    def _flush(self, pending: list[Batch]) -> None:
        for src in self.sources:
            if src.name not in self.counters.errors:
                self.counters.lost[src.name] = src.lost()
        if not pending:
            return
        batch = concat(pending, self.columns)
        if len(self.sources) > 1 and "timestamp" in batch:
            order = np.argsort(batch["timestamp"], kind="stable")
            batch = {k: v.take(order) for k, v in batch.items()}
        pending.clear()
        self.counters.events += rows(batch)
        with self._sink_lock:
            if self.writer is not None:
                self.writer.write(batch)
                self._keep_tail(batch)
            elif self.keep_batches:
                self.batches_seen.append(batch)
        self._queue.put(batch)

    def live_tables(self, latest: bool = True) -> dict[str, Batch]:
        """The sources' tables merged by name: the newest reading of each (for a live view), or every one."""
        from gadgetbook.run_tables import merged_tables

        return merged_tables(self.sources, latest=latest)

    def stream_to(self, writer, tail_rows: int = 100_000) -> None:
        """Send every batch to `writer` (a DatasetWriter) and keep only the newest `tail_rows` rows in memory."""
        with self._sink_lock:
            self.writer, self.tail_rows = writer, tail_rows
            # Nobody may be reading live (a run started and left alone): what waits for a consumer is held
            # to the tail's rows, and so is always among the tail's batches; older ones are on disk.
            self._queue.bound(tail_rows, MAX_WAITING)
            seen, self.batches_seen, self.keep_batches = self.batches_seen, [], False
            for batch in seen:  # what arrived before the writer was set
                writer.write(batch)
                self._keep_tail(batch)

    @property
    def live_skipped(self) -> int:
        """Batches a slow consumer of a streamed run never took (they are on disk)."""
        return self._queue.dropped

    def _keep_tail(self, batch: Batch) -> None:
        self._tail.append(batch)
        self._tail_count += rows(batch)
        while self._tail and self._tail_count - rows(self._tail[0]) >= self.tail_rows:
            self._tail_count -= rows(self._tail.popleft())

    def _close_sources(self) -> None:
        for src in self.sources:
            try:
                self.counters.lost[src.name] = src.lost()
            except Exception:  # noqa: S110 - a source that failed has no count to give
                pass
            src.close()

    # -- the consumer's side --

    def batches(self, wait: float = 0.1) -> Iterator[Batch | None]:
        """Batches as they come; yields None every `wait` seconds when nothing came (for live views)."""
        while True:
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                yield None
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def wait(self) -> None:
        """Block until the run ends; Ctrl-C stops it and keeps what arrived."""
        try:
            for _ in self.batches():
                pass
        except KeyboardInterrupt:
            self.stop()
            for _ in self.batches():
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def frame(self):
        """All events of the run as a pandas DataFrame, with the run's facts in `.attrs`."""
        from gadgetbook.frames.dataframe import to_dataframe

        # A streamed run's tail ends with whole batches: only its newest `tail_rows` rows become the DataFrame.
        # The run's thread appends while the run goes on: read a copy taken under its lock.
        with self._sink_lock:
            kept = newest(list(self._tail), self.tail_rows) if self.writer is not None else list(self.batches_seen)
        batches = kept or ([self.schema] if self.schema is not None else [])
        return to_dataframe(batches, self.columns, self.attrs(), self.categorical)

    def result(self):
        """The run's result: its DataFrame, or the kind's own type built from it (a Profile)."""
        df = self.frame()
        return self._kind_result(df) if self.kind is not None else df

    def _kind_result(self, df):
        return self.kind.result_with_tables(df, self.tables) if self.tables else self.kind.result(df)

    def conclude(self, want_result: bool = True):
        """What follows every run, whoever started it: the result, saved where --save asked, with the
        files the gadget's params asked for written. A terminal that printed the rows already passes
        `want_result=False`: no DataFrame is built unless one is saved.

        A recording that cannot be written where asked is written elsewhere and the result still returned;
        the sentence that says so ends its notes and is kept in `save_notice`.
        """
        if self.writer is not None:
            self.writer.close(self.attrs())
        if not (want_result or (self.save_path and self.writer is None)):
            return None
        df = self.frame()
        df.attrs["notes"] = self.notes(len(df))
        if self.save_path and self.writer is None:
            from gadgetbook.frames.recording import save_keeping
            from gadgetbook.hints import saved

            notes = df.attrs["notes"]

            def say_where(path) -> None:  # said before writing, so that the recording reads as the run did
                df.attrs["notes"] = [*notes, saved(str(path), len(df))]

            self.saved_to, self.save_notice = save_keeping(df, self.save_path, before_write=say_where)
            if self.save_notice:
                df.attrs["notes"] = [*notes, self.save_notice]
        from gadgetbook.views.result import register

        register(df)  # shown with the result view wherever it is displayed (%load_ext gadgetbook)
        if self.kind is None:
            return df
        result = self._kind_result(df)
        self.kind.after_run(result)
        return result

    def notes(self, rows: int) -> list[str]:
        """Sentences for the end of a run: targets that ended during it, and why it may have seen nothing."""
        out: list[str] = []
        if self.exits is not None:
            try:
                out += self.exits()
            except Exception:  # noqa: S110 - a best-effort look; the run's result matters more
                pass
        if rows == 0 and self.kind is not None:
            out += self.kind.empty_notes(self.attrs())
        return out

    def attrs(self) -> dict[str, Any]:
        c = self.counters
        extra: dict[str, Any] = {}
        for src in self.sources:  # facts a source adds about itself (seconds sampled, ...)
            extra.update(getattr(src, "attrs", dict)())
        saved = {"dataset": str(self.writer.path), "tail_rows": self.tail_rows} if self.writer is not None else {}
        return extra | saved | {
            "version": gadgetbook_version(),
            "gadget": self.gadget,
            "mode": self.mode,
            "kind": self.kind.name if self.kind is not None else "trace",
            "behaviour": list(self.kind.spec.behaviour) if self.kind is not None and self.kind.spec else [],
            "params": dict(self.params),
            "targets": self.targets,
            "nodes": [s.name for s in self.sources],
            "start": c.started,
            "end": c.ended,
            "events": c.events,
            "lost": dict(c.lost),
            "errors": dict(c.errors),
        }

    def summary(self) -> str:
        from gadgetbook.views.summary import summary_line

        return summary_line(self.attrs())

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self.stop()


class Handoff:
    """What the pump hands to the run's consumer: batches, then an error or the end. Unbounded unless
    `bound()` is called; then the oldest batches are dropped while the newer ones hold `max_rows` rows or
    there are more than `max_items` (the end and an error are never dropped)."""

    def __init__(self) -> None:
        self._items: collections.deque = collections.deque()
        self._rows = 0
        self._ready = threading.Condition()
        self._max_rows: int | None = None
        self._max_items = 0
        self.dropped = 0

    def bound(self, max_rows: int, max_items: int) -> None:
        with self._ready:
            self._max_rows, self._max_items = max_rows, max_items
            self._trim()

    def put(self, item: Any) -> None:
        with self._ready:
            self._items.append(item)
            self._rows += rows(item) if isinstance(item, dict) else 0
            self._trim()
            self._ready.notify()

    def _trim(self) -> None:
        items = self._items
        while (self._max_rows is not None and len(items) > 1 and isinstance(items[0], dict)
               and (len(items) > self._max_items or self._rows - rows(items[0]) >= self._max_rows)):
            self._rows -= rows(items.popleft())
            self.dropped += 1

    def get(self, timeout: float) -> Any:
        """The oldest item; queue.Empty when none came within `timeout` seconds."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._items, timeout):
                raise queue.Empty
            item = self._items.popleft()
            self._rows -= rows(item) if isinstance(item, dict) else 0
            return item


def gadgetbook_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gadgetbook")
    except PackageNotFoundError:
        return "0"


def rows(batch: Batch) -> int:
    """Rows in a batch (every column has as many)."""
    return len(next(iter(batch.values()))) if batch else 0


def newest(batches: list[Batch], n: int) -> list[Batch]:
    """The last `n` rows of `batches` (oldest first), as views of them."""
    extra = sum(rows(b) for b in batches) - n
    out = list(batches)
    while out and extra >= rows(out[0]):
        extra -= rows(out.pop(0))
    if out and extra > 0:
        out[0] = {k: v.take(slice(extra, None)) if isinstance(v, Coded) else v[extra:] for k, v in out[0].items()}
    return out


def concat(batches: list[Batch], columns: list[str]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    out = {}
    for k in columns:
        parts = [b[k] for b in batches]
        out[k] = Coded.concat(parts) if isinstance(parts[0], Coded) else np.concatenate(parts)
    return out
