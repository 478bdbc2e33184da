"""Notebook benchmark: the live table's kernel-side cost at 100,000 events/s, and the saved size of a
1-million-event run. Run as root: `.venv/bin/python benchmarks/notebook.py`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def widget_cost(rate: int = 100_000, seconds: float = 5.0, batches_per_s: int = 4) -> None:
    """Feed decoded batches at `rate` events/s to the live table; report CPU spent per second in it."""
    from support.idle import IdleSource  # nothing behind the Run: only the view is measured here

    from gadgetbook import catalog
    from gadgetbook.frames.decode import Decoder, NoContainers
    from gadgetbook.run_handle import Run
    from gadgetbook.views.live import LiveTable

    spec = catalog.get("opensnoop")
    decoder = Decoder(spec, "bench", NoContainers())
    per_batch = rate // batches_per_s
    raw = np.zeros(per_batch, dtype=spec.event_dtype)
    raw["timestamp_raw"] = np.arange(per_batch) * 1000
    raw["pid"] = np.arange(per_batch) % 50 + 1000
    raw["comm"] = b"worker"
    raw["path"] = [f"/var/lib/app/file-{i % 500}".encode() for i in range(per_batch)]
    batch = decoder.decode(raw)

    run = Run("opensnoop", {}, [IdleSource()], decoder.names(), targets="this host")
    view = LiveTable(run, max_rows=20, refresh=0.25)
    spent = 0.0
    sizes = []
    for _ in range(int(seconds * batches_per_s)):
        t0 = time.process_time()
        view.add(batch)
        view.render(force=True)
        spent += time.process_time() - t0
        sizes.append(len(view.table.value) + len(view.counters.value))
    run.stop()
    print(f"live table at {rate:,} ev/s ({batches_per_s} batches/s of {per_batch:,}): "
          f"{spent / seconds * 1000:.1f} ms of CPU per second ({spent / seconds * 100:.2f}% of a core); "
          f"{view.renders} renders; each update sends {np.mean(sizes) / 1024:.1f} KiB; rows in the page: "
          f"{view.table.value.count('<tr>') - 1} (max_rows=20)")


NOTEBOOK_CELLS = [
    "%load_ext gadgetbook",
    "import subprocess, os\n"
    "loop = subprocess.Popen(['{loop}', 'open', '{n}', '/dev/null'], stdin=subprocess.PIPE, text=True)",
    "import threading\n"
    "threading.Timer(1.0, lambda: (loop.stdin.write('go\\n'), loop.stdin.flush())).start()\n"
    "df = %gadget opensnoop --pid {{loop.pid}} --timeout 12 --ring-size 64M --save run.parquet",
    "loop.wait(); len(df), sum(df.attrs['lost'].values())",
]


def saved_size(n: int = 1_000_000) -> None:
    import nbclient
    import nbformat

    work = Path(tempfile.mkdtemp(prefix="gadgetbook-nbbench-"))
    loop = work / "loop"
    subprocess.run(["gcc", "-O2", "-o", loop, ROOT / "benchmarks" / "loop.c"], check=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.format(loop=loop, n=n)) for c in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    env_dirs = {k: str(work / k) for k in ("IPYTHONDIR", "MPLCONFIGDIR", "JUPYTER_RUNTIME_DIR")}
    os.environ.update(env_dirs)
    t0 = time.monotonic()
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(work)}}).execute()
    elapsed = time.monotonic() - t0
    out = work / "run.ipynb"
    nbformat.write(nb, out)
    rows = nb.cells[-1].outputs[0]["data"]["text/plain"]
    print(f"notebook of a {n:,}-event run: (rows, lost) = {rows}; saved .ipynb {out.stat().st_size / 1024:.0f} KiB, "
          f"recording {(work / 'run.parquet').stat().st_size / 1024 / 1024:.1f} MiB; executed in {elapsed:.1f} s")
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    widget_cost()
    saved_size()
