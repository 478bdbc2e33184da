"""The policy advisor's rules and the talk graph, from tcptracer-shaped DataFrames (no kernel needed)."""

import pandas as pd
import pytest
import yaml
from IPython import get_ipython as running_ipython
from IPython.core.error import UsageError
from IPython.testing.globalipapp import get_ipython
from matplotlib.figure import Figure

from gadgetbook.advise.network_policy import policies_from_events, selector_labels
from gadgetbook.errors import GadgetError
from gadgetbook.frames.recording import save
from gadgetbook.views.network import connections, talk_graph

INVENTORY = [
    {"name": "api-1", "namespace": "", "labels": {"app": "api", "io.kubernetes.pod.name": "api-1"},
     "addresses": ["10.1.0.2"]},
    {"name": "db-1", "namespace": "", "labels": {"app": "db", "pod-template-hash": "abc"}, "addresses": ["10.1.0.3"]},
    {"name": "bare", "namespace": "", "labels": {}, "addresses": ["10.1.0.9"]},
]


def _rows(*rows):
    cols = ["type", "container", "comm", "saddr", "sport", "daddr", "dport"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)


EVENTS = _rows(
    ("connect", "api-1", "api", "10.1.0.2", 40000, "10.1.0.3", 5432),      # api -> db
    ("accept", "db-1", "postgres", "10.1.0.3", 5432, "10.1.0.2", 40000),   # the same, seen by db
    ("connect", "api-1", "api", "10.1.0.2", 40001, "10.1.0.3", 5432),      # a second connection
    ("accept", "api-1", "api", "::ffff:10.1.0.2", 8080, "::ffff:192.0.2.7", 51000),  # an outside client
    ("connect", "api-1", "api", "127.0.0.1", 40002, "127.0.0.1", 9000),    # loopback: inside the workload
    ("close", "api-1", "api", "10.1.0.2", 40000, "10.1.0.3", 5432),
    ("connect", "bare", "sh", "10.1.0.9", 40003, "10.1.0.3", 5432),        # no labels: no policy, a note
)


def test_rules_follow_what_was_seen():
    advice = policies_from_events(EVENTS, INVENTORY, namespace="shop")
    policies = {p["metadata"]["name"]: p["spec"] for p in yaml.safe_load_all(advice.yaml)}
    assert set(policies) == {"api-network", "db-network"}
    assert policies["api-network"]["podSelector"] == {"matchLabels": {"app": "api"}}
    assert policies["api-network"]["egress"] == [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}],
                                                  "ports": [{"protocol": "TCP", "port": 5432}]}]
    assert policies["api-network"]["ingress"] == [{"from": [{"ipBlock": {"cidr": "192.0.2.7/32"}}],
                                                   "ports": [{"protocol": "TCP", "port": 8080}]}]
    assert policies["db-network"]["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
                                                  "ports": [{"protocol": "TCP", "port": 5432}]}]
    assert "egress" not in policies["db-network"]
    assert advice.notes == ["Container bare has no labels to select it by; label it to get a policy for it."]
    assert {p["metadata"]["namespace"] for p in advice.policies} == {"shop"}
    assert 'download="network-policy.yaml"' in advice._repr_html_()


def test_runtime_labels_are_not_selectors():
    assert selector_labels({"app": "x", "io.kubernetes.container.name": "c", "pod-template-hash": "1"}) == {"app": "x"}


def test_events_of_another_gadget_are_refused():
    with pytest.raises(GadgetError, match="lack the tcptracer columns"):
        policies_from_events(pd.DataFrame({"path": ["/etc"]}), INVENTORY)


def test_a_connection_seen_at_both_ends_counts_once():
    conns = connections(EVENTS, INVENTORY)
    pairs = conns.groupby(["client", "server", "port"]).size().to_dict()
    assert pairs[("api-1", "db-1", 5432)] == 2
    assert pairs[("192.0.2.7", "api-1", 8080)] == 1
    assert pairs[("bare", "db-1", 5432)] == 1
    assert pairs[("api-1", "api-1", 9000)] == 1  # loopback stays inside the workload


def test_talk_graph_is_a_figure_with_every_endpoint(tmp_path):
    fig = talk_graph(EVENTS, INVENTORY, path=tmp_path / "graph.png")
    assert isinstance(fig, Figure)
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert {"api-1", "db-1", "bare", "192.0.2.7"} <= labels and "127.0.0.1" not in labels
    assert ":5432 ×2" in labels
    assert (tmp_path / "graph.png").stat().st_size > 1000


def test_magic_advises_from_a_recording(tmp_path):
    events = EVENTS.copy()
    events.attrs["inventory"] = INVENTORY
    path = save(events, tmp_path / "rec.parquet")
    ip = get_ipython() or running_ipython()  # the test shell, started here or by an earlier test module
    ip.run_line_magic("load_ext", "gadgetbook")
    advice = ip.run_line_magic("gadget", f"advise network-policy --from {path} --file {tmp_path / 'p.yaml'}")
    assert (tmp_path / "p.yaml").read_text() == advice.yaml
    with pytest.raises(UsageError, match="name the workloads to watch with -l SELECTOR or -c NAME"):
        ip.run_line_magic("gadget", "advise network-policy")
    with pytest.raises(UsageError, match="Name what to advise"):
        ip.run_line_magic("gadget", "advise seccomp")
