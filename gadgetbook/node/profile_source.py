"""The profile gadget as a run source: notes the processes being sampled while they live, and hands
over one batch of named stacks (one row per process and stack, with its count) when the run ends."""

from __future__ import annotations

import threading
import time

import numpy as np

from gadgetbook.frames.coded import Coded
from gadgetbook.frames.formats import decode_cstrings
from gadgetbook.node.profile_session import ProfileSession
from gadgetbook.symbols.kallsyms import kernel_symbols
from gadgetbook.symbols.process import UserSymbols
from gadgetbook.symbols.stacks import StackNamer
from gadgetbook.targets.local import LocalContainers

COLUMNS = ["node", "namespace", "pod", "container", "pid", "comm", "user_stack", "kernel_stack", "count",
           "user_addresses", "kernel_addresses", "mntns_id"]
CATEGORICAL = frozenset({"node", "namespace", "pod", "container", "comm"})


class ProfileColumns:
    """What a profile run reports: its columns, the shape of an empty result, and its result type."""

    categorical = CATEGORICAL

    def names(self) -> list[str]:
        return list(COLUMNS)

    def empty(self) -> dict[str, np.ndarray | Coded]:
        strings = {c: np.zeros(0, dtype=object) for c in COLUMNS}
        return strings | {"pid": np.zeros(0, np.uint32), "count": np.zeros(0, np.int64),
                          "mntns_id": np.zeros(0, np.uint64)}

    @staticmethod
    def result_type(df):
        from gadgetbook.frames.profile import Profile

        return Profile(df)


class ProfileSource:
    """Snapshots the maps of every process seen in the counts (so processes that exit before the end
    still get names), then at the end stops sampling, reads the counts and names the stacks."""

    def __init__(self, session: ProfileSession, containers: LocalContainers, name: str, addresses: bool = False,
                 snapshot_interval: float = 0.2) -> None:
        self.session = session
        self.containers = containers
        self.name = name
        self.user = UserSymbols()
        self.addresses = addresses
        self.samples = 0
        self.symbolize_seconds = 0.0
        self._done: dict[str, np.ndarray | Coded] | None = None
        self._handed = False
        self._gone: set[int] = set()
        self._stop = threading.Event()
        self._interval = snapshot_interval
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name=f"gadgetbook-profile-{name}", daemon=True)
        self._thread.start()

    def _snapshot_new(self) -> None:
        keys, _ = self.session.read_counts()
        with self._lock:
            for pid in np.unique(keys["pid"]).tolist():
                if pid not in self.user.processes and pid not in self._gone and not self.user.snapshot(pid):
                    self._gone.add(pid)

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._snapshot_new()
            except OSError:
                pass  # noqa: S110 - a process vanishing mid-read: the next round catches up

    def poll(self):
        if self._done is not None and not self._handed:
            self._handed = True
            return self._done
        return None

    def finish(self) -> None:
        if self._done is not None:
            return
        self.session.stop()
        self._stop.set()
        self._thread.join()
        t0 = time.perf_counter()
        self._snapshot_new()  # processes still alive at the end
        keys, counts = self.session.read_counts()
        ids = set(keys["user_stack_id"].tolist()) | set(keys["kernel_stack_id"].tolist())
        stacks = self.session.read_stacks(sorted(ids))
        namer = StackNamer(self.user, kernel_symbols(), addresses=self.addresses)
        rows = namer.rows(keys, counts, stacks)
        self.samples = int(rows["count"].sum())
        self._done = self._columns(rows)
        self.symbolize_seconds = time.perf_counter() - t0

    def _columns(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray | Coded]:
        n = len(rows["pid"])
        mntns = rows["mntns_id"]
        uniq, inverse = np.unique(mntns, return_inverse=True)
        named = self.containers.names(uniq.tolist())
        out: dict[str, np.ndarray | Coded] = {
            "node": Coded(np.zeros(n, dtype=np.int32), np.array([self.name], dtype=object)),
        }
        for i, key in enumerate(("namespace", "pod", "container")):
            out[key] = _coded([t[i] for t in named], inverse.reshape(-1))
        out["pid"] = rows["pid"]
        out["comm"] = decode_cstrings(rows["comm"], padded=True) if n else Coded(
            np.zeros(0, np.int32), np.zeros(0, dtype=object))
        for key in ("user_stack", "kernel_stack", "count", "user_addresses", "kernel_addresses", "mntns_id"):
            out[key] = rows[key]
        return out

    @property
    def seconds(self) -> float:
        return self.session.seconds

    def attrs(self) -> dict[str, object]:
        """Facts for the result's attrs: how long and on how many CPUs it sampled, what it took to name."""
        return {"kind": "profile", "seconds": round(self.seconds, 3), "cpus": self.session.cpus,
                "samples": self.samples, "symbolize_seconds": round(self.symbolize_seconds, 3)}

    def lost(self) -> int:
        return self.session.lost()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.session.close()


def _coded(values: list[str], index: np.ndarray) -> Coded:
    """values[index] as codes into the distinct values."""
    seen: dict[str, int] = {}
    remap = np.array([seen.setdefault(v, len(seen)) for v in values], dtype=np.int32)
    cats = np.empty(len(seen), dtype=object)
    cats[:] = list(seen)
    return Coded(remap[index] if len(index) else np.zeros(0, np.int32), cats)
