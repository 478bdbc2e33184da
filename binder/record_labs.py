"""Makes the recordings the labs replay where eBPF cannot run (Binder, no root): each lab whose notebook says it
replays is executed live, with GADGETBOOK_LABS_RECORD=1, so that its runs (--save {lab.runs}/...) and facts go
to gadgetbook/labs/recordings/<lab>/.

Run as root on a host with podman and busybox-static: `.venv/bin/python binder/record_labs.py [NOTEBOOK...]`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "notebooks" / "labs"
RECORDINGS = ROOT / "gadgetbook" / "labs" / "recordings"


def record(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="gadgetbook-record-") as work:
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": work}}).execute()


def main(argv: list[str]) -> None:
    os.environ["GADGETBOOK_LABS_RECORD"] = "1"
    os.environ["GADGETBOOK_LABS_STRICT"] = "1"  # a recording whose answers fail is not shipped
    os.environ.pop("GADGETBOOK_LABS_REPLAY", None)
    paths = [Path(a) for a in argv] or sorted(LABS.glob("*.ipynb"))
    for path in paths:
        if not nbformat.read(path, as_version=4).metadata.get("gadgetbook", {}).get("replays"):
            continue
        record(path)
        print(path.name)
    for p in sorted(RECORDINGS.rglob("*")):
        if p.is_file():
            print(f"  {p.relative_to(RECORDINGS)}  {p.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
