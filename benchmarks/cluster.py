"""Cluster benchmark on the local test cluster: time to first row on a warm deployment, one node
session's throughput over the port-forward, and the node pod's memory at rest and under load.

Run as root with the cluster up and gadgetbook deployed (the e2e tests leave it so with
GADGETBOOK_KEEP_CLUSTER=1): `.venv/bin/python benchmarks/cluster.py`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

KUBECONFIG = os.environ.get("KUBECONFIG", "/var/lib/gadgetbook-cluster/kubeconfig")
BENCH_IMAGE = "localhost/gadgetbook-bench:1"


def bench_image() -> None:
    """busybox plus a static open/close loop, imported into the cluster."""
    from support.podman import ENV, busybox_rootfs

    root = busybox_rootfs()
    subprocess.run(["gcc", "-O2", "-static", "-o", f"{root}/bin/loop", ROOT / "benchmarks" / "loop.c"], check=True)
    tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["podman", "import", "-q", "--change", "ENV PATH=/bin", "-", BENCH_IMAGE], stdin=tar.stdout,
                   check=True, env=ENV, stdout=subprocess.DEVNULL)
    tar.wait()
    shutil.rmtree(root)
    subprocess.run(["bash", str(ROOT / "tests" / "cluster" / "import-image.sh"), BENCH_IMAGE], check=True)


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


def main() -> None:
    from support.kube import namespace, ready_pods, wait_for

    import gadgetbook
    import gadgetbook.catalog
    from gadgetbook.kube.api import NAMESPACE, connect
    from gadgetbook.targets.local import scan_proc

    kube = connect(KUBECONFIG)
    core = kube.core
    bench_image()
    node_pod = core.list_namespaced_pod(NAMESPACE).items[0]
    node_cid = node_pod.status.container_statuses[0].container_id.split("://")[-1]
    # The server itself: not the readiness probes that come and go in the same container.
    node_pids = [min(scan_proc()[node_cid].pids)]
    print(f"node pod memory at rest: {rss_mb(node_pids):.1f} MB RSS")

    with namespace(core, "gb-bench") as ns:
        def pod(name, command):
            core.create_namespaced_pod(ns, {
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                    "name": "app", "image": BENCH_IMAGE, "imagePullPolicy": "Never",
                    "command": ["sh", "-c", command]}]}})

        pod("slow", "while true; do cat /etc/passwd >/dev/null; sleep 0.01; done")
        pod("busy", "while true; do echo go | /bin/loop open 2000000 /etc/passwd >/dev/null; done")
        wait_for(lambda: ready_pods(core, ns, "app in (slow, busy)", 2), 120, "bench pods")

        for _ in range(3):
            t0 = time.monotonic()
            run = gadgetbook.start("opensnoop", kubeconfig=KUBECONFIG, namespace=ns, selector="app=slow")
            t_started = time.monotonic()
            first = None
            for batch in run.batches(wait=0.01):
                if batch is not None:
                    first = time.monotonic()
                    break
            run.stop()
            print(f"time to first row: {first - t0:.2f} s (start returned after {t_started - t0:.2f} s)")

        peak = 0.0
        run = gadgetbook.start("opensnoop", kubeconfig=KUBECONFIG, namespace=ns, selector="app=busy")
        t0 = time.monotonic()
        seconds = 10
        while time.monotonic() - t0 < seconds:
            time.sleep(0.5)
            peak = max(peak, rss_mb(node_pids))
        run.stop()
        elapsed = run.counters.elapsed
        df = run.result()
        lost = sum(df.attrs["lost"].values())
        from gadgetbook.kinds import kind_of
        from gadgetbook.protocol import encode

        columns = kind_of(gadgetbook.catalog.get("opensnoop")).columns()
        sample = df.head(100_000)
        wire = len(encode({c: _coded(sample[c]) for c in columns}, columns))
        print(f"one node session over port-forward: {len(df):,} events in {elapsed:.1f} s = "
              f"{len(df) / elapsed / 1e6:.2f} M ev/s into the DataFrame ({lost:,} lost in the kernel; the "
              f"producer, one open/close loop, is the bound); {wire / len(sample):.1f} bytes per event on the "
              f"wire (Arrow, zstd); node pod peak {peak:.1f} MB RSS")


def _coded(series):
    """A DataFrame column back as a batch column (what the node sends)."""
    import numpy as np

    from gadgetbook.frames.coded import Coded

    if str(series.dtype) == "category":
        cats = np.array(series.cat.categories.astype(object), dtype="O")
        return Coded(series.cat.codes.to_numpy().astype(np.int32), cats)
    if series.dtype == object or str(series.dtype) == "str":
        return Coded(*_factor(series))
    return series.to_numpy()


def _factor(series):
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(series)
    return codes.astype(np.int32), np.array(uniques, dtype="O")


if __name__ == "__main__":
    main()
