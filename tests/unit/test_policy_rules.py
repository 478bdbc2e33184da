"""NetworkPolicy rules as Kubernetes applies them, on endpoints described by hand, and one sentence for YAML
that is not a NetworkPolicy. The real check against recorded traffic is in tests/bpf/test_investigation.py."""

import pandas as pd
import pytest

from gadgetbook.errors import GadgetError
from gadgetbook.policy.labels import matches
from gadgetbook.policy.network import Endpoint, load_policies, verdict
from gadgetbook.policy.seccomp import check_seccomp

POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Egress]
  egress:
  - to:
    - podSelector: {matchExpressions: [{key: app, operator: In, values: [db, cache]}]}
    ports: [{protocol: TCP, port: 5432, endPort: 5440}]
  - to: [{ipBlock: {cidr: 10.9.0.0/16, except: [10.9.9.0/24]}}]
"""


def test_selectors():
    assert matches({}, {"a": "1"})
    assert matches({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"})
    assert not matches({"matchLabels": {"a": "1"}}, {"a": "2"})
    assert matches({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["2"]}]}, {})
    assert not matches({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {})


def test_egress_rules():
    docs = load_policies(POLICY)
    api = Endpoint("api", "10.0.0.2", "shop", {"app": "api"})
    db = Endpoint("db", "10.0.0.3", "shop", {"app": "db"})
    web = Endpoint("web", "10.0.0.4", "shop", {"app": "web"})
    notes = set()
    assert verdict(docs, api, db, 5433, "egress", "default", notes) is None  # in the port range
    assert verdict(docs, api, db, 80, "egress", "default", notes) == ["api-egress"]
    assert verdict(docs, api, web, 5432, "egress", "default", notes) == ["api-egress"]
    outside = Endpoint("10.9.1.1", "10.9.1.1")
    assert verdict(docs, api, outside, 443, "egress", "default", notes) is None  # ipBlock, any port
    assert verdict(docs, api, Endpoint("10.9.9.1", "10.9.9.1"), 443, "egress", "default", notes) == ["api-egress"]
    # Not selected, or another namespace: not isolated.
    assert verdict(docs, web, outside, 443, "egress", "default", notes) is None
    other_ns = Endpoint("api", "10.1.0.2", "dev", {"app": "api"})
    assert verdict(docs, other_ns, web, 80, "egress", "default", notes) is None
    # Ingress is not among its types: nothing is refused coming in.
    assert verdict(docs, api, web, 80, "ingress", "default", notes) is None


@pytest.mark.parametrize("text, words", [
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", "Document 1 of the policy is a Pod, not a NetworkPolicy"),
    ("- just\n- a list\n", "not a NetworkPolicy"),
    ("a: [unclosed\n", "not valid YAML"),
])
def test_not_a_network_policy_is_one_sentence(text, words):
    with pytest.raises(GadgetError, match=words) as err:
        load_policies(text)
    assert "\n" not in str(err.value)


def test_seccomp_seam_on_syscall_rows():
    """The seam the traceloop recordings will use: rows with a syscall column against an OCI profile."""
    profile = {"defaultAction": "SCMP_ACT_ERRNO",
               "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}
    rows = pd.DataFrame({"container": ["web-9a673c2f"] * 4, "syscall": ["read", "write", "ptrace", "ptrace"]})
    out = check_seccomp(profile, rows)
    assert out.to_dict("records") == [{"workload": "web", "syscall": "ptrace", "action": "SCMP_ACT_ERRNO",
                                       "calls": 2}]
    with pytest.raises(GadgetError, match="needs a traceloop recording"):
        check_seccomp(profile, rows.drop(columns="syscall"))
