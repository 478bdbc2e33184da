"""Imports what a node pod runs and prints the source files of every module that brought in (the image keeps
their bytecode, and no other)."""

import importlib
import importlib.util
import sys

# The node's server and every kind it runs; the jupyter-server it lives in; and, in an image with the
# %%node kernel, the kernel and what a cell's gadget run imports first.
SERVER = ["gadgetbook.node.serve", "gadgetbook.node.server", "gadgetbook.kinds.trace", "gadgetbook.kinds.top",
          "gadgetbook.kinds.profile", "gadgetbook.kinds.recorder", "gadgetbook.recorders.service",
          "gadgetbook.programs.wire", "jupyter_server.serverapp"]
KERNEL = ["ipykernel_launcher", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "gadgetbook.api",
          "pandas", "pandas.testing"]

for name in SERVER + (KERNEL if importlib.util.find_spec("ipykernel") else []):
    importlib.import_module(name)
for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None) or ""
    if path.endswith(".py"):
        print(path)
