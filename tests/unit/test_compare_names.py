"""Workload names that stay from one run to the next: generated suffixes go, chosen names stay."""

import pandas as pd
import pytest

from gadgetbook.compare.workloads import base_name, workloads


@pytest.mark.parametrize("name, base", [
    ("api-7d4b9c8f5b-x2x9q", "api"),  # Deployment: ReplicaSet hash and pod id
    ("nginx-deployment-66b6c48dd5-4jw2p", "nginx-deployment"),
    ("web-9a673c2f", "web"),  # a lab container's hex tag
    ("node-agent-bxzkq", "node-agent"),  # DaemonSet pod id without a digit
    ("db-0", "db-0"),  # a StatefulSet's ordinal is who it is
    ("dns-server", "dns-server"),
    ("web", "web"),
    ("cache-redis", "cache-redis"),
])
def test_base_name(name, base):
    assert base_name(name) == base


def test_workloads_of_rows():
    df = pd.DataFrame({"namespace": ["shop", "", ""], "pod": ["api-7d4b9c8f5b-x2x9q", "", ""],
                       "container": ["api", "web-9a673c2f", ""]})
    assert workloads(df).tolist() == ["shop/api/api", "web", "(host)"]
