"""Seccomp profiles that allow exactly the syscalls each workload made, in the JSON format podman, CRI-O,
containerd and the kubelet's `localhost/` profiles read: default action errno, the used syscalls allowed.

The syscalls come from a traceloop recording (`show`/`stop`, live or saved): its per-container counts
cover every syscall since recording began, also those whose rows were overwritten. A recording that
began after a container started misses its start-up; the advice says so. A dedicated run records the
selected containers (from their birth when they start during it) for `timeout` seconds.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gadgetbook.advise.advice import Advice
from gadgetbook.errors import GadgetError

DEFAULT_TIMEOUT = 30.0
EPERM = 1


def profile(syscalls: set[str], architectures: tuple[str, ...]) -> dict[str, Any]:
    """One profile: everything refused with EPERM but these syscalls."""
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": list(architectures),
        "syscalls": [{"names": sorted(syscalls), "action": "SCMP_ACT_ALLOW"}],
    }


def _file_name(container: str) -> str:
    return (re.sub(r"[^A-Za-z0-9_.-]+", "-", container).strip("-") or "workload") + ".json"


@dataclass
class SeccompAdvice(Advice):
    """One profile per container (plain dicts), the rows they came from, and notes. Profiles are JSON, the
    format runtimes read, wherever they are shown or written."""

    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def documents(self) -> list[dict[str, Any]]:
        return list(self.profiles.values())

    def json(self, container: str | None = None) -> str:
        """One container's profile (the only one when there is one), or all of them by container."""
        if container is not None:
            return json.dumps(self.profiles[container], indent=2) + "\n"
        if len(self.profiles) == 1:
            return json.dumps(next(iter(self.profiles.values())), indent=2) + "\n"
        return json.dumps(self.profiles, indent=2) + "\n"

    def render(self, output: str = "json") -> str:
        return self.json()

    def save(self, path: str | Path) -> list[Path]:
        """One profile: written to `path`. Several: `path` is a directory with CONTAINER.json in it."""
        path = Path(path)
        if len(self.profiles) == 1 and path.suffix == ".json":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.json())
            return [path]
        path.mkdir(parents=True, exist_ok=True)
        written = []
        for name in self.profiles:
            (path / _file_name(name)).write_text(self.json(name))
            written.append(path / _file_name(name))
        return written

    def __str__(self) -> str:
        return self.json()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}: {len(p['syscalls'][0]['names'])} syscalls" for n, p in self.profiles.items())
        return f"<SeccompAdvice: {len(self.profiles)} profiles ({sizes}); .json(), .profiles, .save(path)>"

    def _repr_html_(self) -> str:
        parts = []
        for name, prof in self.profiles.items():
            text = json.dumps(prof, indent=2)
            data = base64.b64encode(text.encode()).decode()
            parts.append(f"<b>{html.escape(name)}</b>: {len(prof['syscalls'][0]['names'])} syscalls allowed "
                         f'&middot; <a download="{_file_name(name)}" href="data:application/json;base64,{data}">'
                         f"download {_file_name(name)}</a><pre>{html.escape(text)}</pre>")
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return ('<div class="gadgetbook-seccomp">' + (f"<ul>{notes}</ul>" if notes else "") + "".join(parts)
                + "</div>")


def profiles_from_recording(events) -> SeccompAdvice:
    """Profiles for the containers of a traceloop DataFrame (show/stop, or its recording replayed)."""
    from gadgetbook.kernel.syscalls import syscall_table

    if "syscall" not in getattr(events, "columns", ()) or events.attrs.get("kind") != "recorder":
        raise GadgetError("These rows are not a traceloop recording; advise from `traceloop show`/`stop` "
                          "(or its --save file).")
    arches = tuple(events.attrs.get("architectures") or syscall_table().arch_names)
    used: dict[str, set[str]] = {}
    notes: list[str] = []
    for c in events.attrs.get("containers") or ():
        name = c.get("container") or c.get("id", "")[:12]
        used.setdefault(name, set()).update(c.get("syscalls") or {})
        if not c.get("from_birth", True):
            notes.append(f"{name} was already running when recording began: the syscalls of its start are missing "
                         "from its profile; record before it starts (traceloop start -l ... ) for a complete one.")
    for name, rows in events.groupby(events.container.astype(str), observed=True):
        used.setdefault(name, set()).update(rows.syscall.astype(str))
    used = {name: calls for name, calls in used.items() if name and calls}
    if not used:
        raise GadgetError("The recording holds no container's syscalls; nothing to write a profile from.")
    return SeccompAdvice(profiles={name: profile(calls, arches) for name, calls in sorted(used.items())},
                         events=events, notes=notes)


def advise_seccomp_profile(events=None, *, selector: str | None = None, container: str | None = None,
                           timeout: float | str | None = DEFAULT_TIMEOUT, local: bool | None = None,
                           namespace: str | None = None, kubeconfig: str | None = None,
                           context: str | None = None, on_run=None) -> SeccompAdvice:
    """Seccomp profiles from a traceloop DataFrame, or from recording the selected workloads for `timeout`.

    Live: the containers that match (and those that start during the run, from their first syscall) are
    recorded in the kernel, counting every syscall (rows are kept only for execve: the counts are what
    a profile needs); Ctrl-C ends the wait early. The rows come back in `.events`. (`on_run` is taken as
    every advisor takes it; a recording has no live table to show.)
    """
    if events is not None:
        return profiles_from_recording(events)
    if not (selector or container):
        raise GadgetError("Name the workloads to advise for: -l SELECTOR or -c NAME (or give a recording).")
    import time

    from gadgetbook.options import parse_duration
    from gadgetbook.recorders.front import RecorderVerbs

    seconds = parse_duration(timeout) or DEFAULT_TIMEOUT
    tl = RecorderVerbs("traceloop")
    where = {k: v for k, v in (("selector", selector), ("container", container), ("local", local),
                               ("namespace", namespace), ("kubeconfig", kubeconfig), ("context", context)) if v}
    tl.start(**where, syscalls="execve", entries=16, max_age=seconds + 60)
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        pass  # stopped early: advise from what was seen
    finally:
        events = tl.stop(**where)
    return profiles_from_recording(events)
