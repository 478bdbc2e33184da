"""A program of one's own for the nodes of a cluster: compiled here, once per distinct kernel, against the BTF
each node's API serves (fetched once per hash and kept in the cache); the object travels in the run's START.

Nodes need no compiler and no headers: CO-RE relocates the object on the node's own kernel, and compiling
against that kernel's BTF makes a field the kernel lacks a compile error here, before anything runs.
"""

from __future__ import annotations

from gadgetbook.client.node_link import NodeLink
from gadgetbook.errors import GadgetError
from gadgetbook.kube.api import NAMESPACE, NODE_PORT, Kube, bearer_token
from gadgetbook.kube.node_pods import node_pods
from gadgetbook.kube.portforward import pod_connector
from gadgetbook.programs.compile import Compiled, arch_of, cache_dir, compile_program, vmlinux_header
from gadgetbook.protocol import BTF_PATH, BTF_RAW_PATH


def compile_on(link: NodeLink, source: str) -> Compiled:
    """The program compiled for the kernel of the node behind `link` (nodes of one kernel share the compile:
    the BTF and the object are cached by hash)."""
    facts = link.get(BTF_PATH)
    digest = str(facts["sha256"])
    vmlinux = cached_vmlinux(digest) or vmlinux_header(link.get_bytes(BTF_RAW_PATH, timeout=60), digest)
    return compile_program(source, vmlinux, arch=arch_of(str(facts["arch"])))


def cached_vmlinux(digest: str):
    """The cached vmlinux.h directory for a BTF hash, or None."""
    where = cache_dir("btf", digest[:24])
    return where if (where / "vmlinux.h").exists() else None


class NodeObjects:
    """The program's object for each node, compiled on first need and shared by nodes of the same kernel."""

    def __init__(self, kube: Kube, source: str) -> None:
        self.kube = kube
        self.source = source
        self._pods = node_pods(kube)
        self._token: str | None = None

    def first_node(self, wanted: str | None = None) -> str:
        """The node to compile for first (the one --node names, else any node with a node pod)."""
        if wanted:
            if wanted not in self._pods:
                raise GadgetError(f"No gadgetbook node pod is ready on the node {wanted}; nodes with one: "
                                  f"{', '.join(sorted(self._pods)) or 'none'}.")
            return wanted
        if not self._pods:
            raise GadgetError("No gadgetbook node pod is ready in this cluster; deploy with `gadgetbook deploy` "
                              "and check `gadgetbook status`.")
        return sorted(self._pods)[0]

    def link(self, node: str) -> NodeLink:
        if node not in self._pods:
            self._pods = node_pods(self.kube)
        if node not in self._pods:
            raise GadgetError(f"No gadgetbook node pod is ready on the node {node}.")
        if self._token is None:
            self._token = bearer_token(self.kube)  # the node checks who asks with it
        return NodeLink(node, pod_connector(self.kube, NAMESPACE, self._pods[node], NODE_PORT), self._token)

    def compiled_for(self, node: str) -> Compiled:
        return compile_on(self.link(node), self.source)

    def object_for(self, node: str):
        return self.compiled_for(node).path
