"""%%bcc benchmark on the local test cluster: how long a bcc program takes from the call to attached on a pod's
node (the node pod's bcc compiling it) next to the same on this host, and the node pod's memory peak meanwhile.

Run as root with the cluster up, under the cluster lock:
`flock /tmp/gadgetbook-cluster.lock .venv/bin/python benchmarks/bcc_cluster.py --deploy` (--deploy builds this
checkout's image with bcc, imports and deploys it; without it, node pods with bcc must be deployed already).
Debian's kernel headers are linked for the running kernel while it runs (as the tests do) and removed after.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

STATE = Path(os.environ.get("GADGETBOOK_CLUSTER_DIR", "/var/lib/gadgetbook-cluster"))
KUBECONFIG = os.environ.get("KUBECONFIG", str(STATE / "kubeconfig"))
NODE_IMAGE = "localhost/gadgetbook-node:bench-bcc"
# A program that includes the kernel's networking headers: what makes bcc's compiler work hardest.
HEAVY = r"""
#include <net/sock.h>
#include <net/inet_sock.h>
#include <linux/tcp.h>
BPF_HASH(states, u32, u64);
TRACEPOINT_PROBE(sock, inet_sock_set_state)
{
	u32 state = args->newstate;

	states.increment(state);
	return 0;
}
"""


def deploy_bcc_image(kube) -> None:
    from gadgetbook.kube.deploy import deploy

    env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "tests" / "cluster" / "containers.conf")}
    subprocess.run(["bash", str(ROOT / "tests" / "cluster" / "images.sh"), "base"], check=True, env=env)
    subprocess.run(["bash", str(ROOT / "images" / "build.sh"), "--base", "localhost/gadgetbook-base:bookworm-slim",
                    "--tag", NODE_IMAGE, "--bcc"], check=True, env=env, stdout=subprocess.DEVNULL)
    size = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", NODE_IMAGE],
                          capture_output=True, text=True, check=True, env=env).stdout.strip()
    print(f"node image with bcc: {int(size) / 1e6:.0f} MB")
    subprocess.run(["bash", str(ROOT / "tests" / "cluster" / "import-image.sh"), NODE_IMAGE], check=True, env=env)
    deploy(kube, NODE_IMAGE, progress=lambda line: None, bcc=True)


def memory_files(pid: int) -> tuple[Path, Path]:
    """The (usage, peak) files of the memory cgroup of a process: cgroup v1's, else v2's."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    v1 = next((line.split(":", 2)[2] for line in lines if ":memory:" in line), None)
    if v1 is not None:
        base = Path("/sys/fs/cgroup/memory") / v1.lstrip("/")
        return base / "memory.usage_in_bytes", base / "memory.max_usage_in_bytes"
    from gadgetbook.targets.host_view import HostView

    base = HostView(None).cgroup2() / next(line[3:] for line in lines if line.startswith("0::")).lstrip("/")
    return base / "memory.current", base / "memory.peak"


def start_seconds(source: str, repeats: int, **where) -> list[float]:
    from gadgetbook.programs.api import start_bcc

    took = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run = start_bcc(source, warn=lambda _: None, **where)
        took.append(time.perf_counter() - t0)
        run.stop()
        run.conclude()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploy", action="store_true", help="build, import and deploy this checkout's bcc image")
    parser.add_argument("--repeats", type=int, default=5, help="starts of each program, each place")
    args = parser.parse_args()

    from support.cells import BCC_OPEN_COUNTER, with_marker
    from support.kernel_headers import debian_headers
    from support.kube import cell_and_other

    from gadgetbook.kube.api import NAMESPACE, connect
    from gadgetbook.kube.node_pods import node_pods
    from gadgetbook.targets.local import scan_proc

    kube = connect(KUBECONFIG)
    if args.deploy:
        deploy_bcc_image(kube)
    pod_name = next(iter(node_pods(kube).values()))
    pod = kube.core.read_namespaced_pod(pod_name, NAMESPACE)
    cid = pod.status.container_statuses[0].container_id.split("://", 1)[-1]
    server = min(scan_proc()[cid].pids)
    usage, peak = memory_files(server)
    programs = {"TRACEPOINT_PROBE, one struct": with_marker(BCC_OPEN_COUNTER, "/tmp/gb-bench-bcc"),
                "networking headers": HEAVY}
    with contextlib.ExitStack() as stack:
        ns, cell, _, _ = stack.enter_context(cell_and_other(kube.core.api_client, "gb-bench-bcc", "/tmp/gb-bench"))
        stack.enter_context(debian_headers())
        print(f"node pod at rest: {int(usage.read_text()) / 2**20:.0f} MiB")
        for what, source in programs.items():
            with contextlib.suppress(OSError):  # v1 resets its peak so, v2 since Linux 6.12; else the pod's
                peak.write_text("0")
            node = start_seconds(source, args.repeats, namespace=ns, podname=cell, kubeconfig=KUBECONFIG)
            here = start_seconds(source, args.repeats, local=True)
            print(f"{what}: start to attached, median of {args.repeats}: on the pod's node "
                  f"{statistics.median(node):.2f} s, on this host {statistics.median(here):.2f} s "
                  f"(x{statistics.median(node) / statistics.median(here):.2f}); node pod's peak "
                  f"{int(peak.read_text()) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
