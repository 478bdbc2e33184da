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
            {"op": "sleep", "name": "settle_zoom", "ms": 1000},
            {"op": "text", "name": "zoom_text", "selector": f"{GRAPH} .gadgetbook-flame-zoom"},
            {"op": "screenshot", "name": "zoomed", "file": "zoomed.png", "scroll_to": GRAPH},
            {"op": "fill", "name": "search", "selector": f"{GRAPH} input.gadgetbook-flame-search", "value": "hot_leaf"},
            {"op": "sleep", "name": "settle_search", "ms": 1000},
            {"op": "text", "name": "share_text", "selector": f"{GRAPH} .gadgetbook-flame-share"},
            {"op": "screenshot", "name": "searched", "file": "searched.png", "scroll_to": GRAPH},
            {"op": "click", "name": "reset", "selector": f"{GRAPH} button.gadgetbook-flame-reset"},
            {"op": "sleep", "name": "settle_reset", "ms": 1000},
            {"op": "count", "name": "zoom_after", "selector": f"{GRAPH} .gadgetbook-flame-zoom:not(:empty)"},
        ],
    }
    result, _ = run_in_lab(root, plan)
    n = result["named"]
    (ARTIFACTS / "result.json").write_text(json.dumps({k: v for k, v in n.items()}, indent=1, default=str))
    assert n["zoom_text"]["text"].startswith("zoom: hotloop"), n["zoom_text"]
    share = re.search(r'"hot_leaf": ([\d.]+)% of samples', n["share_text"]["text"])
    assert share and float(share.group(1)) >= 80, n["share_text"]
    assert n["zoom_after"]["count"] == 0
    for shot in result["screenshots"]:
        assert Path(shot).is_file() and Path(shot).stat().st_size > 0
