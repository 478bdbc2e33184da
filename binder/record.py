"""Makes the recordings the Binder notebook replays: a two-container app on this host, traced for real.

Run as root on a host with podman and busybox-static: `.venv/bin/python binder/record.py`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import gadgetbook  # noqa: E402
from support.podman import Container, busybox_rootfs  # noqa: E402

OUT = Path(__file__).with_name("recordings")


def main() -> None:
    rootfs = busybox_rootfs()
    api = Container(rootfs, "shop-api", {"app": "api", "tier": "web"},
                    "while true; do cat /etc/passwd >/dev/null; cat /data/config.yaml 2>/dev/null; "
                    "ls /data >/dev/null; sleep 0.3; done")
    db = Container(rootfs, "shop-db", {"app": "db", "tier": "data"},
                   "while true; do cat /data/db.sqlite 2>/dev/null; sleep 0.5; done")
    try:
        time.sleep(0.5)
        run = gadgetbook.start("execsnoop", selector="app in (api, db)")
        api.exec("/bin/sh", "-c", "wget -q -O- http://127.0.0.1:1/ 2>/dev/null; true")
        time.sleep(3)
        run.stop()
        gadgetbook.frames.recording.save(run.result(), OUT / "execsnoop-shop.parquet")
        opens = gadgetbook.run("opensnoop", selector="app in (api, db)", timeout=4)
        gadgetbook.frames.recording.save(opens, OUT / "opensnoop-shop.parquet")
    finally:
        api.remove()
        db.remove()
        subprocess.run(["rm", "-rf", rootfs], check=False)
    for p in sorted(OUT.glob("*.parquet")):
        print(p, p.stat().st_size)


if __name__ == "__main__":
    import gadgetbook.frames.recording  # noqa: F401

    main()
