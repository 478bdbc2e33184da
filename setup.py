"""Builds the gadgets' BPF objects (make -C bpf) into the package before the Python files are collected."""

import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithBpf(build_py):
    def run(self):
        subprocess.run(["make", "-C", "bpf", "-j2"], check=True)
        super().run()


setup(cmdclass={"build_py": BuildWithBpf})
