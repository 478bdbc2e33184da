"""The flame graph in a real browser: JupyterLab in headless Chromium profiles a frame-pointer program,
then the test clicks a frame (zoom), types in the search box and resets, reading the widget's state
from the page.

Needs Debian's chromium and playwright-core: `bash tests/support/browser/install.sh`.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from support.lab import run_in_lab

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "flamegraph"
NOTEBOOK = Path(__file__).parent / "notebooks" / "flamegraph.ipynb"
SUPPORT = Path(__file__).parents[1] / "support"

pytestmark = [pytest.mark.browser, pytest.mark.root]
GRAPH = ".gadgetbook-flamegraph"


def test_zoom_search_and_reset_in_jupyterlab(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    for name in ("hotloop.c", "hotloop.py"):
        shutil.copy(SUPPORT / name, root / name)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    plan = {
        "screenshot_dir": str(ARTIFACTS),
        "timeout_ms": 30_000,
        "steps": [
            {"op": "open", "name": "open", "path": NOTEBOOK.name, "timeout_ms": 60_000},
            {"op": "wait_kernel_idle", "name": "kernel_idle", "timeout_ms": 60_000},
            {"op": "run_cells", "name": "run", "until_tag": "graph", "cell_timeout_ms": 120_000},
            {"op": "wait", "name": "graph", "selector": f"{GRAPH} canvas", "timeout_ms": 30_000},
            {"op": "wait", "name": "image", "selector": ".jp-OutputArea-output img", "timeout_ms": 30_000},
            {"op": "screenshot", "name": "shown", "file": "shown.png", "scroll_to": GRAPH},
            {"op": "click", "name": "zoom", "selector": f"{GRAPH} canvas"},
            # Each action is seen done when the page says so (a bound, not a fixed pause).
            {"op": "wait_text", "name": "zoom_text", "selector": f"{GRAPH} .gadgetbook-flame-zoom",
             "pattern": "^zoom: ", "timeout_ms": 10_000},
            {"op": "screenshot", "name": "zoomed", "file": "zoomed.png", "scroll_to": GRAPH},
            {"op": "fill", "name": "search", "selector": f"{GRAPH} input.gadgetbook-flame-search", "value": "hot_leaf"},
            {"op": "wait_text", "name": "share_text", "selector": f"{GRAPH} .gadgetbook-flame-share",
             "pattern": '"hot_leaf": [1-9]', "timeout_ms": 10_000},  # the kernel's answer, not the 0.0% before it
            {"op": "screenshot", "name": "searched", "file": "searched.png", "scroll_to": GRAPH},
            {"op": "click", "name": "reset", "selector": f"{GRAPH} button.gadgetbook-flame-reset"},
            {"op": "wait_gone", "name": "zoom_after", "selector": f"{GRAPH} .gadgetbook-flame-zoom:not(:empty)",
             "timeout_ms": 10_000},
        ],
    }
    result, _ = run_in_lab(root, plan)
    n = result["named"]
    (ARTIFACTS / "result.json").write_text(json.dumps({k: v for k, v in n.items()}, indent=1, default=str))
    assert n["zoom_text"]["text"].startswith("zoom: hotloop"), n["zoom_text"]
    share = re.search(r'"hot_leaf": ([\d.]+)% of samples', n["share_text"]["text"])
    assert share and float(share.group(1)) >= 80, n["share_text"]
    for shot in result["screenshots"]:
        assert Path(shot).is_file() and Path(shot).stat().st_size > 0
