"""The investigation timeline in a real browser: JupyterLab in headless Chromium shows a recorded investigation
of the lab app; dragging across the timeline brushes a span, every gadget's table shrinks to its rows in the
span, and the span is readable from Python in the next cell.

Needs Debian's chromium and playwright-core: `bash tests/support/browser/install.sh`.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from support.lab import run_in_lab

import gadgetbook
from gadgetbook.labs.app import NetworkLab

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "timeline"
NOTEBOOK = Path(__file__).parent / "notebooks" / "timeline.ipynb"
pytestmark = [pytest.mark.browser, pytest.mark.root, pytest.mark.containers]
VIEW = ".gadgetbook-investigation"
TITLES = f"{VIEW} .gadgetbook-table-title"


def _rows(texts: list[str]) -> dict[str, tuple[int, int]]:
    out = {}
    for t in texts:
        m = re.match(r"(\w+): ([\d,]+) of ([\d,]+) rows", t.strip())
        assert m, t
        out[m.group(1)] = (int(m.group(2).replace(",", "")), int(m.group(3).replace(",", "")))
    return out


def test_brushing_the_timeline_filters_the_tables(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with NetworkLab(subnet="10.213.56.0/24") as lab:
        time.sleep(1.5)
        inv = gadgetbook.investigate("execsnoop,tcptracer,dns", selector=lab.selector, timeout=4)
    inv.save(root / "inv")
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    plan = {
        "screenshot_dir": str(ARTIFACTS),
        "timeout_ms": 30_000,
        "steps": [
            {"op": "open", "name": "open", "path": NOTEBOOK.name, "timeout_ms": 60_000},
            {"op": "wait_kernel_idle", "name": "kernel_idle", "timeout_ms": 60_000},
            {"op": "run_cells", "name": "show", "until_tag": "timeline", "cell_timeout_ms": 60_000},
            {"op": "wait", "name": "canvas", "selector": f"{VIEW} .gadgetbook-timeline canvas"},
            {"op": "wait", "name": "tables", "selector": TITLES, "min_count": 3},
            {"op": "text", "name": "before", "selector": TITLES, "all": True},
            {"op": "screenshot", "name": "shown", "file": "shown.png", "scroll_to": VIEW},
            {"op": "drag", "name": "brush", "selector": f"{VIEW} .gadgetbook-timeline canvas",
             "from": [0.45, 0.6], "to": [0.75, 0.6]},
            {"op": "sleep", "name": "settle", "ms": 1500},
            {"op": "text", "name": "after", "selector": TITLES, "all": True},
            {"op": "text", "name": "status", "selector": f"{VIEW} .gadgetbook-timeline-status"},
            {"op": "screenshot", "name": "brushed", "file": "brushed.png", "scroll_to": VIEW},
            {"op": "run_cells", "name": "read", "index": 1, "cell_timeout_ms": 30_000},
            {"op": "text", "name": "printed", "selector": ".jp-Cell:nth-child(2) .jp-OutputArea-output"},
        ],
    }
    result, _ = run_in_lab(root, plan)
    n = result["named"]
    (ARTIFACTS / "result.json").write_text(json.dumps(n, indent=1, default=str))
    before, after = _rows(n["before"]["text"]), _rows(n["after"]["text"])
    assert set(before) == {"execsnoop", "tcptracer", "dns"}
    assert all(shown == total and total > 0 for shown, total in before.values()), before
    assert all(after[g][1] == before[g][1] for g in before)  # same totals
    assert all(after[g][0] <= after[g][1] for g in after) and any(after[g][0] < after[g][1] for g in after), after
    assert sum(shown for shown, _ in after.values()) > 0, after
    assert n["status"]["text"].startswith("span ")
    printed = n["printed"]["text"]
    assert printed.startswith("SPAN True"), printed
    counts = json.loads(printed.split(" ", 2)[2].replace("'", '"'))
    assert counts == {g: shown for g, (shown, _) in after.items()}
    for shot in result["screenshots"]:
        assert Path(shot).is_file() and Path(shot).stat().st_size > 0
