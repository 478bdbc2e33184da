"""The flame graph in a real browser: JupyterLab in headless Chromium profiles a program, then the test
clicks a frame (zoom), types in the search box and resets; drags across the time strip and opens the
sandwich of a function from the function table, reading what the graph shows from the page.

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


def lab_root(tmp_path: Path, notebook: Path, *files: Path) -> Path:
    """A folder for the lab with the notebook and the files it needs."""
    root = tmp_path / "root"
    root.mkdir()
    for f in (notebook, *files):
        shutil.copy(f, root / f.name)
    return root


def artifacts(name: str) -> Path:
    out = ARTIFACTS.with_name(name)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return out


def until_graph(notebook: Path) -> list[dict]:
    """Steps: open the notebook, run it down to the cell tagged graph, wait for the graph."""
    return [
        {"op": "open", "name": "open", "path": notebook.name, "timeout_ms": 60_000},
        {"op": "wait_kernel_idle", "name": "kernel_idle", "timeout_ms": 60_000},
        {"op": "run_cells", "name": "run", "until_tag": "graph", "cell_timeout_ms": 120_000},
        {"op": "wait", "name": "graph", "selector": f"{GRAPH} canvas.gb-graph", "timeout_ms": 30_000},
    ]


HOTLOOP = (SUPPORT / "hotloop.c", SUPPORT / "hotloop.py")


def test_zoom_search_and_reset_in_jupyterlab(tmp_path):
    root = lab_root(tmp_path, NOTEBOOK, *HOTLOOP)
    shots = artifacts(ARTIFACTS.name)
    plan = {
        "screenshot_dir": str(shots),
        "timeout_ms": 30_000,
        "steps": [
            *until_graph(NOTEBOOK),
            # One graph per call: the static copy rides in the widget's own output, not beside it.
            {"op": "count", "name": "graphs", "selector": GRAPH},
            {"op": "count", "name": "images", "selector": ".jp-OutputArea-output img"},
            {"op": "screenshot", "name": "shown", "file": "shown.png", "scroll_to": GRAPH},
            {"op": "click", "name": "zoom", "selector": f"{GRAPH} canvas.gb-graph"},
            # Each action is seen done when the page says so (a bound, not a fixed pause: a generous one, as the
            # kernel answers a click only once it is idle, which takes long on a busy 2-core machine).
            {"op": "wait_text", "name": "zoom_text", "selector": f"{GRAPH} .gadgetbook-flame-zoom",
             "pattern": "^zoom: ", "timeout_ms": 30_000},
            {"op": "screenshot", "name": "zoomed", "file": "zoomed.png", "scroll_to": GRAPH},
            {"op": "fill", "name": "search", "selector": f"{GRAPH} input.gadgetbook-flame-search", "value": "hot_leaf"},
            {"op": "wait_text", "name": "share_text", "selector": f"{GRAPH} .gadgetbook-flame-share",
             "pattern": '"hot_leaf": [1-9]', "timeout_ms": 30_000},  # the kernel's answer, not the 0.0% before it
            {"op": "screenshot", "name": "searched", "file": "searched.png", "scroll_to": GRAPH},
            {"op": "click", "name": "reset", "selector": f"{GRAPH} button.gadgetbook-flame-reset"},
            {"op": "wait_gone", "name": "zoom_after", "selector": f"{GRAPH} .gadgetbook-flame-zoom:not(:empty)",
             "timeout_ms": 30_000},
        ],
    }
    result, _ = run_in_lab(root, plan)
    n = result["named"]
    (shots / "result.json").write_text(json.dumps(dict(n.items()), indent=1, default=str))
    assert n["zoom_text"]["text"].startswith("zoom: hotloop"), n["zoom_text"]
    share = re.search(r'"hot_leaf": ([\d.]+)% of samples', n["share_text"]["text"])
    assert share and float(share.group(1)) >= 80, n["share_text"]
    assert n["graphs"]["count"] == 1 and n["images"]["count"] == 0
    for shot in result["screenshots"]:
        assert Path(shot).is_file() and Path(shot).stat().st_size > 0


def share_of(text: str, needle: str) -> float:
    found = re.search(rf'"{needle}": ([\d.]+)% of samples', text)
    assert found, text
    return float(found.group(1))


def samples_in_view(text: str) -> int:
    found = re.search(r"([\d,]+) samples in view, (\d+) frames drawn", text)
    assert found, text
    return int(found.group(1).replace(",", ""))


def test_time_span_and_sandwich_change_the_graph(tmp_path):
    notebook = NOTEBOOK.with_name("flamegraph_views.ipynb")
    root = lab_root(tmp_path, notebook, SUPPORT / "unwind" / "phases.c")
    shots = artifacts("flamegraph-views")
    plan = {
        "screenshot_dir": str(shots),
        "timeout_ms": 30_000,
        "steps": [
            *until_graph(notebook),
            {"op": "fill", "name": "search", "selector": f"{GRAPH} input.gadgetbook-flame-search",
             "value": "phase_two"},
            {"op": "sleep", "name": "settle_search", "ms": 1000},
            {"op": "text", "name": "share_all", "selector": f"{GRAPH} .gadgetbook-flame-share"},
            {"op": "text", "name": "status_all", "selector": f"{GRAPH} .gadgetbook-flame-status"},
            {"op": "screenshot", "name": "all_shot", "file": "all.png", "scroll_to": GRAPH},
            # The start of the run: phase_one only (it ran 6 s, the profile began within its first 3).
            {"op": "drag", "name": "span", "selector": f"{GRAPH} canvas.gadgetbook-flame-strip", "from": 0.02,
             "to": 0.2},
            {"op": "sleep", "name": "settle_span", "ms": 1500},
            {"op": "text", "name": "share_span", "selector": f"{GRAPH} .gadgetbook-flame-share"},
            {"op": "text", "name": "status_span", "selector": f"{GRAPH} .gadgetbook-flame-status"},
            {"op": "text", "name": "span_text", "selector": f"{GRAPH} .gadgetbook-flame-span"},
            {"op": "screenshot", "name": "span_shot", "file": "span.png", "scroll_to": GRAPH},
            {"op": "click", "name": "reset", "selector": f"{GRAPH} button.gadgetbook-flame-reset"},
            {"op": "sleep", "name": "settle_reset", "ms": 1000},
            {"op": "click", "name": "table", "selector": f"{GRAPH} button.gadgetbook-flame-view-table"},
            {"op": "sleep", "name": "settle_table", "ms": 1000},
            {"op": "screenshot", "name": "functions_shot", "file": "functions.png", "scroll_to": GRAPH},
            {"op": "click", "name": "pick", "selector": f'{GRAPH} tr.gadgetbook-flame-function:has-text("phase_one")'},
            {"op": "sleep", "name": "settle_sandwich", "ms": 1500},
            {"op": "text", "name": "sandwich", "selector": f"{GRAPH} .gadgetbook-flame-zoom"},
            {"op": "text", "name": "status_sandwich", "selector": f"{GRAPH} .gadgetbook-flame-status"},
            {"op": "screenshot", "name": "sandwich_shot", "file": "sandwich.png", "scroll_to": GRAPH},
        ],
    }
    result, _ = run_in_lab(root, plan)
    n = result["named"]
    (shots / "result.json").write_text(json.dumps(dict(n.items()), indent=1, default=str))
    whole = share_of(n["share_all"]["text"], "phase_two")
    assert 20 <= whole <= 90, n["share_all"]  # both phases ran while sampled
    assert share_of(n["share_span"]["text"], "phase_two") < 5, n["share_span"]  # the span saw phase_one only
    assert samples_in_view(n["status_span"]["text"]) < samples_in_view(n["status_all"]["text"]) / 2
    assert n["span_text"]["text"].startswith("0.")
    assert n["sandwich"]["text"] == "sandwich: phase_one", n["sandwich"]
    # The sandwich: phase_one's callers above it (main, __libc_start_call_main, ...), nothing from phase_two.
    assert samples_in_view(n["status_sandwich"]["text"]) <= samples_in_view(n["status_all"]["text"]) * 0.75


def test_reopened_notebook_draws_its_graph_not_model_not_found(tmp_path):
    """Profile in JupyterLab, save, stop the server (its kernel goes with it), then open the saved notebook
    in a new one: a graph shows (drawn from the widget state saved with it, or, where the notebook is not
    trusted, its static copy), never "model not found"."""
    root = lab_root(tmp_path, NOTEBOOK, *HOTLOOP)
    first = {
        "timeout_ms": 30_000,
        "steps": [
            {"op": "open", "name": "open", "path": NOTEBOOK.name, "timeout_ms": 60_000},
            {"op": "wait_kernel_idle", "name": "kernel_idle", "timeout_ms": 60_000},
            {"op": "run_cells", "name": "run", "cell_timeout_ms": 120_000},
            {"op": "wait", "name": "graph", "selector": f"{GRAPH} canvas.gb-graph", "timeout_ms": 30_000},
            {"op": "click", "name": "focus", "selector": ".jp-Notebook"},
            {"op": "press", "name": "save", "keys": "Control+s"},
            {"op": "sleep", "name": "settle_save", "ms": 3000},
        ],
    }
    run_in_lab(root, first)
    saved = json.loads((root / NOTEBOOK.name).read_text())
    assert saved["metadata"].get("widgets"), "the notebook was saved without its widget state"
    shots = artifacts("flamegraph-reopened")
    second = {
        "screenshot_dir": str(shots),
        "timeout_ms": 30_000,
        "steps": [
            {"op": "open", "name": "open", "path": NOTEBOOK.name, "timeout_ms": 60_000},
            {"op": "wait", "name": "shown", "selector": f"{GRAPH} canvas.gb-graph, .jp-OutputArea-output img",
             "timeout_ms": 30_000},
            {"op": "sleep", "name": "settle", "ms": 3000},
            {"op": "text", "name": "outputs", "selector": ".jp-OutputArea-output", "all": True},
            {"op": "count", "name": "graphs", "selector": f"{GRAPH} canvas.gb-graph"},
            {"op": "count", "name": "images", "selector": ".jp-OutputArea-output img"},
            {"op": "screenshot", "name": "reopened", "file": "reopened.png"},
        ],
    }
    result, _ = run_in_lab(root, second)
    n = result["named"]
    assert not [t for t in n["outputs"]["text"] if "model not found" in t], n["outputs"]["text"]
    assert n["graphs"]["count"] + n["images"]["count"] == 1  # one graph, interactive or its static copy
