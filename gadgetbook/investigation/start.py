"""Starting an investigation: each gadget's Run on targets resolved once, a failure of one leaving the others."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gadgetbook import catalog
from gadgetbook.errors import GadgetError
from gadgetbook.run_handle import Run

MANIFEST = "_investigation.json"
NAMER = "execsnoop"  # its execs name the processes behind every gadget's rows: it stops last


def gadget_names(gadgets: str | Iterable[str]) -> list[str]:
    """`"execsnoop,dns"` or a list as gadget names; one sentence for an unknown name or one given twice."""
    names = [g.strip() for g in (gadgets.split(",") if isinstance(gadgets, str) else gadgets)]
    names = [g for g in names if g]
    if not names:
        raise GadgetError("Name the gadgets to investigate with, comma-separated: execsnoop,opensnoop,tcptracer,dns.")
    twice = sorted({g for g in names if names.count(g) > 1})
    if twice:
        raise GadgetError(f"{', '.join(twice)} appears more than once; name each gadget of an investigation once.")
    for g in names:
        catalog.get(g)  # an unknown name: one sentence listing the known ones
    return names


class LiveInvestigation:
    """The gadgets of an investigation while they run: one Run each (`runs`), and those that failed to start."""

    def __init__(self, runs: dict[str, Run], failed: dict[str, str], facts: dict[str, Any], save: str | None) -> None:
        self.runs = runs
        self.failed = failed
        self.facts = facts
        self.save = save

    @property
    def running(self) -> bool:
        return any(r.running for r in self.runs.values())

    def wait(self) -> None:
        """Until every gadget's run has ended; Ctrl-C stops them all and keeps what arrived."""
        try:
            while self.running:
                time.sleep(0.1)
        except KeyboardInterrupt:
            self.stop()

    def stop(self) -> None:
        _stop_together([r for g, r in self.runs.items() if g != NAMER])
        _stop_together([r for g, r in self.runs.items() if g == NAMER])

    def summary(self) -> str:
        lines = [r.summary() for r in self.runs.values()]
        lines += [f"{g}: did not start ({e})" for g, e in self.failed.items()]
        return "\n".join(lines)

    def conclude(self):
        """The Investigation: every gadget's result, the facts, and its recording where --save asked."""
        from gadgetbook.investigation.result import Investigation

        if self.running:
            self.stop()
        results = {g: r.conclude() for g, r in self.runs.items()}
        facts = dict(self.facts)
        facts["ended"] = time.time()
        facts["failed"] = dict(self.failed)
        if self.facts.get("local"):
            from gadgetbook.targets.addresses import local_inventory

            # Containers that came or went during the run are known by either list.
            after = local_inventory()
            known = {(c["namespace"], c["name"]) for c in after}
            facts["inventory"] = after + [c for c in facts.get("inventory", [])
                                          if (c["namespace"], c["name"]) not in known]
        else:
            for r in self.runs.values():
                inventory = getattr(r, "inventory", None)
                if inventory is not None:
                    inventory.refresh()
                    facts["inventory"] = inventory.inventory
        inv = Investigation(results, facts)
        if self.save:
            from gadgetbook.investigation.store import finish_saved

            finish_saved(inv, self.save)
        return inv


def _stop_together(runs: list[Run]) -> None:
    threads = [threading.Thread(target=r.stop) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _end_namer_last(runs: dict[str, Run], end: float) -> None:
    """End execsnoop at the common end, or once every other gadget has ended if that is later: a process
    whose row another gadget still saw exec'd while execsnoop was watching, so it is named."""
    for g, r in runs.items():
        if g != NAMER:
            r.join()
    runs[NAMER].end_at(end)


def start_investigation(gadgets: str | Iterable[str], *, params: dict[str, dict[str, Any]] | None = None,
                        **kwargs: Any) -> LiveInvestigation:
    """Start several gadgets on the same targets; keywords as `gadgetbook.start` (selector, container, timeout,
    save FOLDER, cluster flags), `params` per gadget ({"opensnoop": {"failed": True}})."""
    from gadgetbook.api import Where

    names = gadget_names(gadgets)
    params = dict(params or {})
    stray = sorted(set(params) - set(names))
    if stray:
        raise GadgetError(f"Params are given for {', '.join(stray)}, which is not among the gadgets "
                          f"{', '.join(names)}; add it or drop its params.")
    where = Where.split(kwargs)
    where.check()
    if kwargs:
        raise GadgetError(f"{', '.join(sorted(kwargs))} is a gadget's param, not a target; give it per gadget: "
                          f"params={{'GADGET': {{'{next(iter(kwargs))}': ...}}}}.")
    specs = {g: catalog.get(g) for g in names}
    checked = {g: specs[g].checked_params(params.get(g, {})) for g in names}
    save = where.opts.pop("save", None)
    if save is not None:
        from gadgetbook.investigation.store import check_folder

        check_folder(save)
    facts: dict[str, Any] = {"gadgets": names, "started": time.time()}
    runs: dict[str, Run] = {}
    failed: dict[str, str] = {}
    in_cluster = where.in_cluster()
    opener: Callable[[str], Run]
    if in_cluster:
        from gadgetbook.api import start_in_cluster

        facts["local"] = False
        opener = lambda g: start_in_cluster(specs[g], checked[g], where)  # noqa: E731
    else:
        from gadgetbook.api import start_local
        from gadgetbook.targets.addresses import local_inventory
        from gadgetbook.targets.local import LocalContainers, resolve
        from gadgetbook.targets.processes import snapshot

        containers = LocalContainers()
        targets = resolve(containers, selector=where.opts.get("selector"), container=where.opts.get("container"),
                          pid=where.opts.get("pid"))
        facts |= {"local": True, "targets": targets.description, "inventory": local_inventory(containers)}
        opener = lambda g: start_local(specs[g], checked[g], where, containers, targets)  # noqa: E731
    # Side by side: each load waits mostly on the kernel's verifier, so the gadgets start (and end) together.
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {g: pool.submit(opener, g) for g in names}
        errors: list[BaseException] = []
        for g, fut in futures.items():
            try:
                runs[g] = fut.result()
            except GadgetError as exc:
                failed[g] = str(exc)
            except BaseException as exc:  # noqa: BLE001 - stop what started, then raise the first
                errors.append(exc)
    if errors:
        for r in runs.values():
            r.stop()
        raise errors[0]
    if not runs:
        raise GadgetError("No gadget of the investigation started: "
                          + "; ".join(f"{g}: {e}" for g, e in failed.items()))
    facts["attached"] = time.time()
    # Every gadget watches the same window: the runs attach at different moments (each waits on the verifier)
    # and end together, the timeout after the last attached; ending each at its own timeout, the first would
    # miss what the others still see (an exec behind a connect, seen at the very end).
    if where.timeout:
        end = time.monotonic() + where.timeout
        for g, r in runs.items():
            r.end_at(end if g != NAMER or len(runs) == 1 else None)
        if NAMER in runs and len(runs) > 1:
            threading.Thread(target=_end_namer_last, args=(runs, end), daemon=True).start()
    if in_cluster:
        facts["targets"] = next(iter(runs.values())).targets
    else:
        # After every gadget is attached: a process alive now is named from here, one exec'd later by execsnoop.
        pid = where.opts.get("pid")
        facts["processes"] = [p for p in snapshot(targets.mntns_ids, socket.gethostname(), containers)
                              if not pid or p["pid"] == pid]
        # From here on every process is named: alive now (read above) or exec'd since execsnoop attached. One
        # that exec'd before and exited while /proc was being read stays unnamed.
        facts["processes_read"] = time.time()
    live = LiveInvestigation(runs, failed, facts, save)
    if save is not None:
        from gadgetbook.investigation.store import stream_runs

        try:
            stream_runs(live, save, tail_rows=int(where.opts.get("tail") or 0) or None)
        except BaseException:
            live.stop()
            raise
    return live


def investigate(gadgets: str | Iterable[str], *, on_start: Callable[[LiveInvestigation], None] | None = None,
                **kwargs: Any):
    """Run several gadgets on the same targets until the timeout (or Ctrl-C) and return one Investigation:
    a DataFrame per gadget on one clock, joined (`remote_name`, `exe`, `cmdline`), a timeline, a diff."""
    live = start_investigation(gadgets, **kwargs)
    if on_start is not None:
        on_start(live)
    else:
        live.wait()
    return live.conclude()
