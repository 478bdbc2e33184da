"""Interactive tables in JupyterLab, compared in a real headless Chromium: itables, Perspective and ipydatagrid
each show a 1,000,000-row result (opensnoop-like columns), then take a stream of 100,000 rows in 40 updates.

Per library and scenario it prints: the kernel's CPU time, the bytes the kernel sent to the page over widget
messages, the time from running the cell to rows on screen (or to the last streamed row being counted by the
page), and the page's JavaScript heap. Needs the three libraries (`pip install itables perspective-python
ipydatagrid`), Debian's chromium and playwright-core (tests/support/browser/install.sh):
`.venv/bin/python benchmarks/tables.py [--rows 1000000] [--only perspective]`. Measured with gadgetbook's
own grid too (Perspective whose front-end code the kernel sends when shown).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.lab import DriverError, run_in_lab  # noqa: E402

SETUP = r'''
import asyncio, json, time
import numpy as np, pandas as pd
from ipykernel.comm.comm import BaseComm as Comm  # what ipykernel 7 creates for widgets

SENT = [0]
_publish = Comm.publish_msg


def _counting_publish(self, msg_type, data=None, metadata=None, buffers=None, **keys):
    SENT[0] += len(json.dumps(data, default=str)) + sum(memoryview(b).nbytes for b in (buffers or []))
    return _publish(self, msg_type, data, metadata, buffers, **keys)


Comm.publish_msg = _counting_publish
COMMS = np.array(["python3", "nginx", "postgres", "sh", "cat", "node", "java"], dtype=object)
PATHS = np.array([f"/var/lib/app/data/file-{k}.db" for k in range(5000)], dtype=object)


def frame(n, start=0):
    i = np.arange(start, start + n)
    return pd.DataFrame({
        "path": pd.array(PATHS[i % len(PATHS)], dtype="str"),
        "error": pd.array(np.array(["", "ENOENT", "EACCES"], dtype=object)[i % 3], dtype="str"),
        "fd": (i % 100).astype(np.int64),
        "comm": pd.array(COMMS[i % len(COMMS)], dtype="str"),
        "pid": (1000 + i % 50).astype(np.int64),
        "timestamp": pd.Timestamp("2026-01-01") + pd.to_timedelta(i * 1000, unit="ns"),
    })


def report(**values):
    print("BENCH " + json.dumps(values))
'''

LIBRARIES = {
    "itables": {
        # maxBytes=0: every row goes to the page (the default keeps 64 KB and shows a sample).
        "make": "from itables.widget import ITable\nw = ITable(df, maxBytes=0)",
        "empty": "from itables.widget import ITable\nw = ITable(frame(0), maxBytes=0)",
        "update": "w.update(df=pd.concat(parts, ignore_index=True), maxBytes=0)",
        "rows_js": "(() => { const i = [...document.querySelectorAll('.dt-info')].pop();"
                   " return !!i && document.querySelectorAll('.dt-container tbody tr').length >= 5"
                   " && i.textContent.includes('{count}'); })()",
    },
    "perspective": {
        "make": "from perspective.widget import PerspectiveWidget\nw = PerspectiveWidget(df)",
        "empty": "from perspective.widget import PerspectiveWidget\nw = PerspectiveWidget(frame(0))",
        "update": "w.update(batch)",
        "rows_js": "(async () => { const vs = [...document.querySelectorAll('perspective-viewer')];"
                   " const v = vs.pop(); if (!v) return false;"
                   " const t = await v.getTable(); const n = await t.size();"
                   " const dg = v.querySelector('perspective-viewer-datagrid');"
                   " const rt = dg && (dg.shadowRoot || dg).querySelector('regular-table');"
                   " return n === {n} && !!rt && rt.querySelectorAll('tbody tr').length >= 5; })()",
    },
    # gadgetbook's grid: Perspective, its front end sent by the kernel when shown (not kept in the state).
    "gadgetbook": {
        "make": "from gadgetbook.views.grid import grid\nfrom gadgetbook.views.table import Layout\n"
                "w = grid(df, Layout.of(list(df.columns)))",
        "empty": "from gadgetbook.views.grid import _grid_class, arrow_bytes\nw = _grid_class()(arrow_bytes(frame(0)))",
        "update": "w.update(arrow_bytes(batch))",
        "rows_js": None,  # as perspective's
    },
    "ipydatagrid": {
        "make": "from ipydatagrid import DataGrid\nw = DataGrid(df)",
        "empty": "from ipydatagrid import DataGrid\nw = DataGrid(frame(0))",
        "update": "w.data = pd.concat(parts, ignore_index=True)",
        # A canvas grid: the page holds no row elements; the canvas being painted is the sign.
        "rows_js": "(() => { const c = [...document.querySelectorAll('.lm-DataGrid canvas, .p-DataGrid canvas')];"
                   " return c.length > 0 && c.some((x) => x.width > 0); })()",
    },
}

HEAP_JS = "performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1048576) : null"


def notebook(cells: list[tuple[str, str | None]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for source, tag in cells:
        cell = nbformat.v4.new_code_cell(source)
        if tag:
            cell.metadata["tags"] = [tag]
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def render_cells(lib: dict, rows: int) -> list[tuple[str, str | None]]:
    return [
        (SETUP, None),
        (f"df = frame({rows})\nlen(df)", None),
        ("sent0, cpu0, t0 = SENT[0], time.process_time(), time.perf_counter()\n"
         f"{lib['make']}\n"
         "display(w)\n"
         "report(kernel_cpu_s=round(time.process_time() - cpu0, 3), sent_mb=round((SENT[0] - sent0) / 1e6, 2),\n"
         "       state_mb=round(len(json.dumps(w.get_state(), default=str)) / 1e6, 2))",
         "go"),
        # Run once the rows are on screen: what the page asked for after the cell (a grid that keeps its rows
        # in the kernel sends them then).
        ("report(sent_by_then_mb=round((SENT[0] - sent0) / 1e6, 2))", None),
    ]


def stream_cells(lib: dict, updates: int, per_update: int) -> list[tuple[str, str | None]]:
    return [
        (SETUP, None),
        (f"{lib['empty']}\ndisplay(w)", None),
        # Awaiting between updates lets the kernel answer the page (Perspective asks it for the rows it shows).
        ("parts, cpu, sent0, t0 = [], 0.0, SENT[0], time.perf_counter()\n"
         f"for k in range({updates}):\n"
         f"    batch = frame({per_update}, k * {per_update})\n"
         "    parts.append(batch)\n"
         "    c = time.process_time()\n"
         f"    {lib['update']}\n"
         "    cpu += time.process_time() - c\n"
         "    await asyncio.sleep(max(0.0, t0 + (k + 1) * 0.25 - time.perf_counter()))\n"
         "report(update_cpu_s=round(cpu, 3), sent_mb=round((SENT[0] - sent0) / 1e6, 2),\n"
         "       wall_s=round(time.perf_counter() - t0, 2))",
         "go"),
        ("report(sent_by_then_mb=round((SENT[0] - sent0) / 1e6, 2))", None),
    ]


def measure(name: str, cells, expect_js: str, work: Path, bound_ms: int) -> dict:
    go = next(i for i, (_, tag) in enumerate(cells) if tag == "go")
    root = work / name
    root.mkdir(parents=True)
    nbformat.write(notebook(cells), root / "bench.ipynb")
    plan = {
        "screenshot_dir": str(root),
        "timeout_ms": 60_000,
        "steps": [
            {"op": "open", "name": "open", "path": "bench.ipynb", "timeout_ms": 60_000},
            {"op": "wait_kernel_idle", "name": "idle", "timeout_ms": 60_000},
            {"op": "run_cells", "name": "run", "until_tag": "go", "cell_timeout_ms": bound_ms},
            {"op": "wait_eval", "name": "shown", "expr": expect_js, "timeout_ms": bound_ms},
            {"op": "eval", "name": "heap", "expr": HEAP_JS},
            {"op": "run_cells", "name": "after", "index": len(cells) - 1, "cell_timeout_ms": bound_ms},
            {"op": "text", "name": "out", "selector": ".jp-Cell .jp-OutputArea", "all": True},
            {"op": "screenshot", "name": "shot", "file": "shown.png"},
        ],
    }
    try:
        result, _ = run_in_lab(root, plan, timeout=bound_ms / 1000 * 2 + 90)
    except (DriverError, AssertionError) as exc:  # run_in_lab adds the server's log to an AssertionError
        return {"failed": str(exc).splitlines()[0][:200]}
    n = result["named"]
    ran = next(r for r in n["run"]["ran"] if r["index"] == go)
    out = {}
    for text in n["out"]["text"]:
        for line in text.splitlines():
            if line.startswith("BENCH "):
                out.update(json.loads(line[6:]))
    out["cell_ms"] = ran["ms"]
    out["to_screen_ms"] = n["shown"]["end_ms"] - ran["start_ms"]
    out["after_cell_ms"] = n["shown"]["end_ms"] - (ran["start_ms"] + ran["ms"])
    out["js_heap_mb"] = n["heap"]["value"]
    out["page_errors"] = len(result["page_errors"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--updates", type=int, default=40)
    ap.add_argument("--per-update", type=int, default=2_500)
    ap.add_argument("--only", choices=sorted(LIBRARIES))
    ap.add_argument("--bound", type=float, default=180, help="seconds a library gets to show the rows")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gadgetbook-tables-"))
    total = args.updates * args.per_update
    rows = {}
    for name, lib in LIBRARIES.items():
        if args.only and name != args.only:
            continue
        lib = {**lib, "rows_js": lib["rows_js"] or LIBRARIES["perspective"]["rows_js"]}
        expect = lib["rows_js"].replace("{count}", f"{args.rows:,}").replace("{n}", str(args.rows))
        rows[(name, "render")] = measure(f"{name}-render", render_cells(lib, args.rows), expect, work,
                                         int(args.bound * 1000))
        print(f"{name:<12} render {args.rows:,} rows: {rows[(name, 'render')]}", flush=True)
        expect = lib["rows_js"].replace("{count}", f"{total:,}").replace("{n}", str(total))
        rows[(name, "stream")] = measure(f"{name}-stream", stream_cells(lib, args.updates, args.per_update),
                                         expect, work, int(args.bound * 1000))
        print(f"{name:<12} stream {args.updates} x {args.per_update:,} rows: {rows[(name, 'stream')]}", flush=True)
    print(f"\nscreenshots under {work}")


if __name__ == "__main__":
    main()
