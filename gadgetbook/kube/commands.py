"""The cluster commands shared by the terminal and the notebook: deploy, undeploy, status, manifests."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from gadgetbook.errors import GadgetError
from gadgetbook.kube import manifests

COMMANDS = ("deploy", "undeploy", "status", "manifests")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise GadgetError(f"{self.prog}: {message}; see `{self.prog} --help`.")


def parser(command: str, prog: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description={
        "deploy": "Install (or update) gadgetbook's node pods in the cluster and wait until they are ready.",
        "undeploy": "Remove gadgetbook's node pods, namespace and roles from the cluster.",
        "status": "Show each node pod: ready, restarts, image, kernel, BTF, bcc, version.",
        "manifests": "Print the objects deploy applies, as YAML.",
    }[command])
    if command in ("deploy", "manifests"):
        p.add_argument("--image", help=f"node pod image (default {manifests.DEFAULT_IMAGE}, "
                                       f"with --bcc {manifests.BCC_IMAGE})")
        p.add_argument("--bcc", action="store_true",
                       help="node pods that run %%%%bcc programs: the image built with bcc (images/build.sh --bcc) "
                            "and the memory its compiler needs")
    if command in ("deploy", "undeploy"):
        p.add_argument("--timeout", default="3m", help="how long to wait (default %(default)s)")
    if command != "manifests":
        p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
        p.add_argument("--context", help="kubeconfig context")
    return p


def run_command(argv: list[str], prog_prefix: str = "gadgetbook", out: Callable[[str], None] = print):
    """Run one cluster command; returns what it produced (status rows, YAML text, None)."""
    from gadgetbook.kube import deploy as dep
    from gadgetbook.kube.api import connect
    from gadgetbook.options import parse_duration

    command = argv[0]
    ns = parser(command, f"{prog_prefix} {command}").parse_args(argv[1:])
    bcc = bool(getattr(ns, "bcc", False))
    image = getattr(ns, "image", None) or (manifests.BCC_IMAGE if bcc else manifests.DEFAULT_IMAGE)
    if command == "manifests":
        import yaml

        text = yaml.safe_dump_all(manifests.objects(image, bcc), sort_keys=False)
        out(text)
        return text
    kube = connect(ns.kubeconfig, ns.context)
    if command == "deploy":
        return dep.deploy(kube, image, wait=parse_duration(ns.timeout), progress=out, bcc=bcc)
    if command == "undeploy":
        return dep.undeploy(kube, wait=parse_duration(ns.timeout), progress=out)
    rows = dep.status(kube)
    for r in rows:
        facts = f"kernel {r['kernel']}, BTF {'yes' if r['btf'] else 'no'}, bcc {'yes' if r['bcc'] else 'no'}, " \
            f"gadgetbook {r['version']}" \
            if "kernel" in r else r.get("error", "")
        out(f"{r['node']:<20} {r['pod']:<28} {'ready' if r['ready'] else r['phase']:<8} "
            f"restarts {r['restarts']:<3} {r['image']}  {facts}")
    return rows
