"""Cluster benchmark on the local test cluster: the node pod's image, idle CPU and memory, time to first
row, one node session's ceiling over port-forward (a producer that outruns the link), and the
port-forward download speed of the Kubernetes client's reader next to gadgetbook's, in the same run.

Run as root with the cluster up and gadgetbook deployed, under the cluster lock:
`flock /tmp/gadgetbook-cluster.lock .venv/bin/python benchmarks/cluster.py` (it deploys the image of
this checkout itself when `--deploy` is given; `tests/cluster/up.sh` brings the cluster up, `down.sh` down).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

STATE = Path(os.environ.get("GADGETBOOK_CLUSTER_DIR", "/var/lib/gadgetbook-cluster"))
KUBECONFIG = os.environ.get("KUBECONFIG", str(STATE / "kubeconfig"))
BENCH_IMAGE = "localhost/gadgetbook-bench:1"
NODE_IMAGE = "localhost/gadgetbook-node:bench"


def bench_image() -> None:
    """busybox plus a static open/close and getppid loop, imported into the cluster."""
    from support.podman import ENV, busybox_rootfs

    root = busybox_rootfs()
    subprocess.run(["gcc", "-O2", "-static", "-o", f"{root}/bin/loop", ROOT / "benchmarks" / "loop.c"], check=True)
    tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["podman", "import", "-q", "--change", "ENV PATH=/bin", "-", BENCH_IMAGE], stdin=tar.stdout,
                   check=True, env=ENV, stdout=subprocess.DEVNULL)
    tar.wait()
    shutil.rmtree(root)
    subprocess.run(["bash", str(ROOT / "tests" / "cluster" / "import-image.sh"), BENCH_IMAGE], check=True)


def node_image() -> None:
    """The node image of this checkout, its size per layer, imported and deployed."""
    env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "tests" / "cluster" / "containers.conf")}
    subprocess.run(["bash", str(ROOT / "tests" / "cluster" / "images.sh"), "base"], check=True, env=env)
    subprocess.run(["bash", str(ROOT / "images" / "build.sh"), "--base", "localhost/gadgetbook-base:bookworm-slim",
                    "--tag", NODE_IMAGE], check=True, env=env, stdout=subprocess.DEVNULL)
    layers = subprocess.run(["podman", "history", "--format", "{{.Size}}\t{{.CreatedBy}}", NODE_IMAGE],
                            capture_output=True, text=True, check=True, env=env).stdout
    size = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", NODE_IMAGE],
                          capture_output=True, text=True, check=True, env=env).stdout.strip()
    print(f"node image: {int(size) / 1e6:.0f} MB; layers:")
    for line in layers.splitlines():
        layer_size, what = line.split("\t", 1)
        if not layer_size.startswith("0"):
            print(f"  {layer_size:>9}  {what[:90]}")
    subprocess.run(["bash", str(ROOT / "tests" / "cluster" / "import-image.sh"), NODE_IMAGE], check=True, env=env)
    from gadgetbook.kube.api import connect
    from gadgetbook.kube.deploy import deploy

    deploy(connect(KUBECONFIG), NODE_IMAGE, wait=180, progress=lambda line: None)


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


def cgroup_cpu_seconds(pid: int) -> float:
    """CPU time of the whole pod container (every process in it, probes included), from its cgroup."""
    for line in open(f"/proc/{pid}/cgroup"):
        _, controllers, path = line.rstrip("\n").split(":", 2)
        if "cpuacct" in controllers.split(","):
            base = next(p for p in ("/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct") if os.path.isdir(p))
            return int(open(f"{base}{path}/cpuacct.usage").read()) / 1e9
        if controllers == "" and os.path.exists(f"/sys/fs/cgroup/unified{path}/cpu.stat"):
            stat = dict(line.split() for line in open(f"/sys/fs/cgroup/unified{path}/cpu.stat"))
            return int(stat["usage_usec"]) / 1e6
    raise RuntimeError("no cpu accounting cgroup for the node pod")


def port_forward_download(kube, core, ns: str, mb: int = 50) -> None:
    """The same bytes from a pod through the Kubernetes client's port-forward and through gadgetbook's."""
    from kubernetes.stream import portforward
    from support.kube import wait_for

    from gadgetbook.kube.portforward import open_port_forward

    core.create_namespaced_pod(ns, {
        "metadata": {"name": "source", "labels": {"app": "source"}},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
            "name": "app", "image": BENCH_IMAGE, "imagePullPolicy": "Never",
            # busybox nc runs one program per connection: a script that sends the bytes.
            "command": ["sh", "-c", f"printf '#!/bin/sh\\nhead -c {mb << 20} /dev/zero\\n' > /tmp/send; "
                        "chmod +x /tmp/send; exec nc -ll -p 9000 127.0.0.1 -e /tmp/send"]}]}})
    from support.kube import ready_pods

    wait_for(lambda: ready_pods(core, ns, "app=source", 1), 120, "the source pod")

    def client_socket():
        return portforward(core.connect_get_namespaced_pod_portforward, "source", ns, ports="9000").socket(9000)

    def ours():
        return open_port_forward(kube, ns, "source", 9000)

    rates = {}
    for name, connect in (("kubernetes client", client_socket), ("gadgetbook bridge", ours)):
        best = 0.0
        for _ in range(3):
            sock = connect()
            sock.settimeout(120)
            t0, got = time.perf_counter(), 0
            while chunk := sock.recv(1 << 20):
                got += len(chunk)
            sock.close()
            if got != mb << 20:
                raise RuntimeError(f"{name}: {got} of {mb << 20} bytes arrived")
            best = max(best, got / (time.perf_counter() - t0) / 1e6)
        rates[name] = best
    print(f"port-forward download of {mb} MiB, best of 3: " +
          ", ".join(f"{k} {v:.0f} MB/s" for k, v in rates.items()) +
          f" (x{rates['gadgetbook bridge'] / rates['kubernetes client']:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deploy", action="store_true", help="build, import and deploy this checkout's node image")
    parser.add_argument("--seconds", type=float, default=10, help="length of the flood run")
    parser.add_argument("--per-call", type=int, nargs="+", default=[2, 16],
                        help="flood events per getppid(2), one run each (the producer as fast as it goes)")
    parser.add_argument("--paced", type=float, default=1.0, help="M events per second of the paced producer")
    args = parser.parse_args()

    from support.kube import namespace, ready_pods, wait_for

    import gadgetbook
    from gadgetbook.kube.api import NAMESPACE, connect
    from gadgetbook.targets.local import scan_proc

    kube = connect(KUBECONFIG)
    core = kube.core
    if args.deploy:
        node_image()
    bench_image()
    node_pod = core.list_namespaced_pod(NAMESPACE).items[0]
    node_cid = node_pod.status.container_statuses[0].container_id.split("://")[-1]
    node_pids = scan_proc()[node_cid].pids
    print(f"node pod memory fresh: {rss_mb(node_pids):.1f} MB RSS ({len(node_pids)} processes)")
    cpu0, t0 = cgroup_cpu_seconds(node_pids[0]), time.monotonic()
    time.sleep(30)
    idle = (cgroup_cpu_seconds(node_pids[0]) - cpu0) / (time.monotonic() - t0)
    now = len(scan_proc()[node_cid].pids)
    print(f"node pod CPU at rest: {idle * 100:.2f}% of a CPU over 30 s "
          f"(processes before {len(node_pids)}, after {now})")

    with namespace(core, "gb-bench") as ns:
        def pod(name, command):
            core.create_namespaced_pod(ns, {
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                    "name": "app", "image": BENCH_IMAGE, "imagePullPolicy": "Never",
                    "command": ["sh", "-c", command]}]}})

        pod("slow", "while true; do cat /etc/passwd >/dev/null; sleep 0.01; done")
        pod("flood", "while true; do echo go | /bin/loop getppid 20000000 >/dev/null; done")
        # Paced: 16 events per call at RATE calls per second, the rate the node is asked to carry.
        calls = int(args.paced * 1e6 / 16)
        pod("paced", f"while true; do echo go | /bin/loop getppid {calls * 60} /dev/null {calls} >/dev/null; done")
        wait_for(lambda: ready_pods(core, ns, "app in (slow, flood, paced)", 3), 120, "bench pods")

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
        print(f"node pod memory after runs: {rss_mb(node_pids):.1f} MB RSS")

        # One producer (a getppid loop) and more events per call each round: the rate grows until the
        # link and the two ends fall behind; the kernel counts what they could not take.
        peak = 0.0
        for app, per_call in [("paced", 16), *(("flood", n) for n in args.per_call)]:
            run = gadgetbook.start("flood", kubeconfig=KUBECONFIG, namespace=ns, selector=f"app={app}",
                                   per_call=per_call)
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.seconds:
                time.sleep(0.25)
                peak = max(peak, rss_mb(node_pids))
            run.stop()
            elapsed = run.counters.elapsed
            df = run.result()
            lost = sum(df.attrs["lost"].values())
            produced = len(df) + lost
            wire = sum(getattr(src, "wire_bytes", 0) for src in run.sources) / max(len(df), 1)
            what = f"paced at {args.paced:.1f} M ev/s" if app == "paced" else f"{per_call:>2} events per getppid"
            print(f"one node session over port-forward, flood {what}: {len(df):,} events "
                  f"in {elapsed:.1f} s = {len(df) / elapsed / 1e6:.2f} M ev/s into the DataFrame, "
                  f"{lost:,} lost ({lost / max(produced, 1):.1%} of {produced / elapsed / 1e6:.2f} M ev/s made), "
                  f"{wire:.1f} bytes per event on the wire; "
                  f"node pod peak so far {peak:.1f} MB RSS")
            del df, run
        time.sleep(2)
        print(f"node pod memory at rest after the flood: {rss_mb(node_pids):.1f} MB RSS")
        port_forward_download(kube, core, ns)


if __name__ == "__main__":
    main()
