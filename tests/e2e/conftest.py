"""End-to-end tests: they run against the real cluster of tests/cluster/."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "cluster"))

from conftest_cluster import cluster  # noqa: E402,F401
