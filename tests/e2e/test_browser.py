"""Real-browser tests: JupyterLab in headless Chromium runs a notebook's live cell, clicks Stop while the
cell is still running, and sees the static table that replaces the live widget.

Needs Debian's chromium and playwright-core: `bash tests/support/browser/install.sh`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.lab import lab_root, open_and_run, run_in_lab
from support.leftovers import bpf_state

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SMOKE = Path(__file__).parent / "notebooks" / "widget_smoke.ipynb"
QUICKSTART = REPO / "notebooks" / "quickstart.ipynb"

LIVE_RUN_SECONDS = 30  # the live cell stops by itself after this long
STOP_BOUND_MS = 5_000  # Stop must bring the final table within this, far sooner than any timeout

pytestmark = pytest.mark.browser


def live_cell_plan(notebook: str, shots: Path, tag: str = "live") -> dict:
    """Open the notebook, run up to the tagged live cell, see rows arrive, click Stop, see the final table."""
    return {
        "screenshot_dir": str(shots),
        "timeout_ms": 30_000,
        "steps": [
            *open_and_run(notebook, tag, wait_last=False),
            {"op": "wait", "name": "live", "selector": ".gadgetbook-live", "timeout_ms": 20_000},
            {"op": "wait", "name": "first_row", "selector": ".gadgetbook-live table tbody tr", "timeout_ms": 20_000},
            {
                "op": "wait",
                "name": "rows",
                "selector": ".gadgetbook-live table tbody tr",
                "min_count": 3,
                "timeout_ms": 20_000,
            },
            {"op": "text", "name": "header", "selector": ".gadgetbook-live"},
            {"op": "screenshot", "name": "running", "file": "running.png", "scroll_to": ".gadgetbook-live"},
            {"op": "click", "name": "stop", "selector": "button.gadgetbook-stop", "timeout_ms": 5_000},
            {"op": "wait", "name": "final", "selector": ".gadgetbook-final table", "timeout_ms": STOP_BOUND_MS},
            {"op": "count", "name": "live_after", "selector": ".gadgetbook-live"},
            {"op": "count", "name": "final_rows", "selector": ".gadgetbook-final table tbody tr"},
            {"op": "wait_kernel_idle", "name": "kernel_idle_after", "timeout_ms": 10_000},
            {"op": "text", "name": "final_text", "selector": ".gadgetbook-final"},
            {"op": "screenshot", "name": "final_shot", "file": "final.png", "scroll_to": ".gadgetbook-final"},
        ],
    }


def run_live_cell(source: Path, tmp_path: Path, artifacts: Path, min_final_rows: int = 1,
                  live_seconds: float = LIVE_RUN_SECONDS) -> dict:
    root = lab_root(tmp_path, source, artifacts)
    result, lab = run_in_lab(root, live_cell_plan(source.name, artifacts))
    n = result["named"]
    run_started = n["run"]["ran"][-1]["start_ms"]  # the live cell's run was requested
    timings = {
        "lab_ready_s": round(lab.ready_seconds, 2),
        "notebook_open_ms": n["open"]["elapsed_ms"],
        "kernel_idle_ms": n["kernel_idle"]["end_ms"] - n["open"]["end_ms"],
        "first_row_ms": n["first_row"]["end_ms"] - run_started,
        "three_rows_ms": n["rows"]["end_ms"] - run_started,
        "stop_to_final_ms": n["final"]["end_ms"] - n["stop"]["end_ms"],
        "driver_total_ms": result["total_ms"],
    }
    final_text = n["final_text"]["text"]
    report = {**timings, "final_text": final_text[:2000], "dialogs": result["dialogs"]}
    (artifacts / "timings.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"{source.name}: {timings}" + (f" dialogs answered: {result['dialogs']}" if result["dialogs"] else ""))

    assert n["rows"]["count"] >= 3
    assert result["page_errors"] == [], result["page_errors"]
    assert n["final"]["count"] >= 1
    # The live widget is gone: the static table replaced it.
    assert n["live_after"]["count"] == 0
    assert n["final_rows"]["count"] >= min_final_rows
    assert final_text.strip()
    # Stopped by the click, not by the cell running out its time.
    assert timings["stop_to_final_ms"] < STOP_BOUND_MS, timings
    assert n["final"]["end_ms"] - run_started < (live_seconds - 2) * 1000, timings
    assert not result["browser_survivors"]
    for shot in result["screenshots"]:
        assert Path(shot).is_file() and Path(shot).stat().st_size > 0
        assert Path(shot).is_relative_to(artifacts)
    return result


def test_widget_smoke_live_table(tmp_path):
    run_live_cell(SMOKE, tmp_path, ARTIFACTS / "widget_smoke", min_final_rows=3)


@pytest.mark.root
def test_quickstart_live_cell(tmp_path):
    progs_before, _ = bpf_state()
    # The quickstart's live cell runs `execsnoop --timeout 10`: the final table must come from Stop.
    result = run_live_cell(QUICKSTART, tmp_path, ARTIFACTS / "quickstart", live_seconds=10)
    # The header names where it runs; so does the final summary.
    assert "execsnoop · this host ·" in result["named"]["header"]["text"]
    assert "· this host" in result["named"]["final_text"]["text"]
    # The kernel that loaded the gadget is gone; the kernel frees its programs a moment later.
    deadline = time.monotonic() + 5
    while bpf_state()[0] - progs_before and time.monotonic() < deadline:
        time.sleep(0.1)
