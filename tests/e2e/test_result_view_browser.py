"""The result view in a real browser: JupyterLab in headless Chromium runs execsnoop on this host while a loop
runs a program with a long argv. On the rendered page: the header names the mode, the live table keeps its
height (one line per row), the final view puts execsnoop's columns first with no empty column, and the
interactive table beneath sorts and filters. The page raises no JavaScript error.

Needs Debian's chromium and playwright-core: `bash tests/support/browser/install.sh`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.lab import lab_root, open_and_run, run_in_lab

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "result_view"
NOTEBOOK = Path(__file__).parent / "notebooks" / "result_view.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.root]

LIVE = ".gadgetbook-live"
ROWS = f"{LIVE} .gadgetbook-rows"
ROW_HEIGHTS = f"[...document.querySelectorAll('{ROWS} tbody tr')].map((r) => r.getBoundingClientRect().height)"
FINAL_TABLE = """(() => {
  const t = document.querySelector('.gadgetbook-final table.gadgetbook-table');
  const heads = [...t.querySelectorAll('thead th')].map((th) => th.textContent.trim());
  const rows = [...t.querySelectorAll('tbody tr:not(.gadgetbook-gap)')].map((r) => [...r.children]
    .map((td) => td.textContent));
  return {
    heads,
    rows: rows.length,
    empty: heads.filter((h, i) => rows.every((r) => (r[i] || '') === '')),
    tall_rows: [...t.querySelectorAll('tbody tr')].filter((r) => r.getBoundingClientRect().height > 30).length,
    args_align: getComputedStyle(t.querySelector('tbody td:nth-child(' + (heads.indexOf('args') + 1) + ')')).textAlign,
    args_title: (t.querySelector('tbody td:nth-child(' + (heads.indexOf('args') + 1) + ')[title]') || {}).title || '',
  };
})()"""
# Every row of the result is in the grid: its columns, and those with no value in any row.
GRID_SHOWN = """(async () => {
  const v = document.querySelector('.gadgetbook-grid perspective-viewer');
  if (!v) return null;
  const dg = v.querySelector('perspective-viewer-datagrid');
  const rt = dg && (dg.shadowRoot || dg).querySelector('regular-table');
  if (!rt || rt.querySelectorAll('tbody tr').length <= 3) return null;
  const data = await (await v.getView()).to_columns();
  const columns = Object.keys(data).filter((c) => !c.startsWith('__'));
  const empty = columns.filter((c) => data[c].every((x) => x === null || x === '' || x === false));
  return {rows: await (await v.getTable()).size(), columns, empty};
})()"""
# Sort and filter as a reader would set them in the grid's settings (comm and pid brought to the left, where the
# grid renders them), then read the rendered cells back.
GRID_SORT_FILTER = """(async () => {
  const v = document.querySelector('.gadgetbook-grid perspective-viewer');
  const columns = ['comm', 'pid', 'path'];
  await v.restore({columns, sort: [['pid', 'desc']], filter: [['comm', '==', 'true']]});
  await new Promise((r) => setTimeout(r, 1500));
  const dg = v.querySelector('perspective-viewer-datagrid');
  const rt = (dg.shadowRoot || dg).querySelector('regular-table');
  const heads = (await v.save()).columns;
  const rows = [...rt.querySelectorAll('tbody tr')].map((r) => [...r.querySelectorAll('td')]
    .map((td) => td.textContent.trim()));
  const view = await v.getView();
  return {heads, rows: rows.slice(0, 40), total: await view.num_rows()};
})()"""


def test_live_and_final_views_and_the_interactive_table(tmp_path):
    root = lab_root(tmp_path, NOTEBOOK, ARTIFACTS)
    plan = {
        "screenshot_dir": str(ARTIFACTS),
        "timeout_ms": 30_000,
        "steps": [
            *open_and_run(NOTEBOOK.name, "live", wait_last=False, cell_timeout_ms=60_000),
            {"op": "wait", "name": "first_rows", "selector": f"{ROWS} tbody tr", "min_count": 3},
            {"op": "box", "name": "height_early", "selector": ROWS},
            {"op": "box", "name": "live_early", "selector": LIVE},
            {"op": "wait", "name": "full", "selector": f"{ROWS} tbody tr", "min_count": 20},
            {"op": "sleep", "name": "more_rows", "ms": 1500},
            {"op": "box", "name": "height_full", "selector": ROWS},
            {"op": "box", "name": "live_full", "selector": LIVE},
            {"op": "eval", "name": "row_heights", "expr": ROW_HEIGHTS},
            {"op": "text", "name": "header", "selector": f"{LIVE} .gadgetbook-counters"},
            {"op": "screenshot", "name": "running", "file": "running.png", "scroll_to": LIVE},
            {"op": "wait", "name": "final", "selector": ".gadgetbook-final table.gadgetbook-table",
             "timeout_ms": 30_000},
            {"op": "text", "name": "summary", "selector": ".gadgetbook-final .gadgetbook-summary"},
            {"op": "eval", "name": "final_table", "expr": FINAL_TABLE},
            {"op": "wait_eval", "name": "grid", "expr": GRID_SHOWN, "timeout_ms": 60_000},
            {"op": "screenshot", "name": "final_shot", "file": "final.png", "scroll_to": ".gadgetbook-grid"},
            {"op": "eval", "name": "sorted", "expr": GRID_SORT_FILTER},
            {"op": "screenshot", "name": "sorted_shot", "file": "sorted.png", "scroll_to": ".gadgetbook-grid"},
            {"op": "run_cells", "name": "cleanup", "index": 4, "cell_timeout_ms": 30_000},
        ],
    }
    result, _ = run_in_lab(root, plan)
    n = result["named"]
    (ARTIFACTS / "result.json").write_text(json.dumps(n, indent=1, default=str))

    # The mode is named in the live header and in the final summary.
    assert "· this host" in n["header"]["text"] and "/s" in n["header"]["text"], n["header"]
    assert "· this host" in n["summary"]["text"], n["summary"]
    # The live table's height stays fixed from three rows to a full table of long argvs; no row wraps.
    assert n["height_early"]["value"]["height"] == n["height_full"]["value"]["height"], (n["height_early"],
                                                                                        n["height_full"])
    assert n["live_early"]["value"]["height"] == n["live_full"]["value"]["height"]
    heights = n["row_heights"]["value"]
    assert len(heights) == 20 and max(heights) <= 23, heights
    # The final view: execsnoop's own columns first, no column empty in every row, long text cut, left-aligned.
    final = n["final_table"]["value"]
    assert final["heads"][0] == "ppid" and final["heads"].index("args") < final["heads"].index("comm"), final
    assert final["tall_rows"] == 0, final
    assert final["args_align"] == "left" and "--argument-29=" in final["args_title"], final
    # The interactive table holds every row, in the same columns, none of them empty in the whole result.
    grid = n["grid"]["value"]
    total = grid["rows"]
    assert total > 20 and grid["columns"] == final["heads"] and grid["empty"] == [], (grid, final)
    # It sorts and filters what it renders.
    shown = n["sorted"]["value"]
    heads, rows = shown["heads"], shown["rows"]
    assert heads == ["comm", "pid", "path"], shown
    comm, pid = 0, 1
    assert rows and all(r[comm] == "true" for r in rows), shown
    assert all("," not in r[pid] for r in rows), rows[:3]  # ids without thousands separators
    pids = [int(r[pid]) for r in rows]
    assert pids == sorted(pids, reverse=True), pids
    assert 0 < shown["total"] < total
    # No JavaScript error on the page.
    assert result["page_errors"] == [], result["page_errors"]
    assert not result["browser_survivors"]
