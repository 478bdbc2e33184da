"""Builds the gadgets' BPF objects (make -C bpf) into the package before the Python files are collected.

GADGETBOOK_SKIP_BPF=1 skips them: enough for replaying recordings where no eBPF runs (Binder).
"""

import os
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithBpf(build_py):
    def run(self):
        if not os.environ.get("GADGETBOOK_SKIP_BPF"):
            subprocess.run(["make", "-C", "bpf", "-j2"], check=True)
        super().run()


setup(cmdclass={"build_py": BuildWithBpf})
