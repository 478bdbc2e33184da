"""Which recorded syscalls a seccomp profile would have refused: the seam where traceloop recordings and the
seccomp advisor's profiles meet. Works on any DataFrame with a `syscall` column (the traceloop gadget's)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from gadgetbook.errors import GadgetError

# Actions that stop the call (the rest let it run: ALLOW, LOG, TRACE, NOTIFY).
REFUSING = {"SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"}


def load_profile(profile: Any) -> dict[str, Any]:
    if isinstance(profile, (str, os.PathLike)) and Path(profile).is_file():
        profile = Path(profile).read_text()
    if isinstance(profile, str):
        try:
            profile = json.loads(profile)
        except ValueError as exc:
            raise GadgetError(f"The seccomp profile is not JSON ({exc}).") from None
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise GadgetError("That is not a seccomp profile: it needs a defaultAction and a syscalls list "
                          "(the OCI / Kubernetes JSON form).")
    return profile


def action_of(profile: dict[str, Any], syscall: str) -> str:
    for rule in profile.get("syscalls") or []:
        if syscall in (rule.get("names") or []) and not rule.get("args"):
            return rule.get("action", profile["defaultAction"])
    return profile["defaultAction"]


def check_seccomp(profile: Any, events: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """Per workload and syscall: how many calls the profile would have refused, and with which action."""
    from gadgetbook.compare.workloads import workloads

    prof = load_profile(profile)
    if isinstance(events, (str, os.PathLike)):
        from gadgetbook import replay

        events = replay(events, show=False)
    if "syscall" not in getattr(events, "columns", []):
        raise GadgetError("Checking a seccomp profile needs a traceloop recording (rows with a syscall column); "
                          "record one with the traceloop gadget.")
    names = events["syscall"].astype(str)
    actions = {s: action_of(prof, s) for s in names.unique()}
    refused = names.map(actions).isin(REFUSING)
    rows = pd.DataFrame({"workload": workloads(events)[refused], "syscall": names[refused],
                         "action": names[refused].map(actions)})
    return rows.groupby(["workload", "syscall", "action"], sort=True).size().rename("calls").reset_index()
