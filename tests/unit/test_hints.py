"""The sentences that explain a run: nothing matched in a cluster, nothing was seen, a mistyped name."""

import pytest

from gadgetbook import catalog
from gadgetbook.errors import GadgetError
from gadgetbook.hints import did_you_mean, empty_result, no_pods
from gadgetbook.kinds import kind_of
from gadgetbook.targets.kubernetes import PodQuery
from gadgetbook.views.summary import summary_line


def test_no_pods_names_the_flags_that_widen_or_leave_the_cluster():
    text = no_pods(PodQuery(namespace="shop", selector="app=api").describe())
    assert text.startswith("No running pod matches -n shop -l app=api in the cluster; nothing was traced.")
    for flag in ("-A", "-n NAMESPACE", "--local"):
        assert flag in text
    assert "gadgetbook's own node pods are always left out" in text


@pytest.mark.parametrize("word,choices,expected", [
    ("opensnop", ["opensnoop", "execsnoop"], " Did you mean opensnoop?"),
    ("--faild", ["--failed", "--pid", "--timeout"], " Did you mean --failed?"),
    ("zzz", ["opensnoop", "execsnoop"], ""),
])
def test_did_you_mean(word, choices, expected):
    assert did_you_mean(word, choices) == expected


def test_catalog_offers_the_closest_gadget():
    with pytest.raises(GadgetError, match="Unknown gadget 'tcptrace'. Did you mean tcptracer"):
        catalog.get("tcptrace")


def _attrs(gadget, **kw):
    spec = catalog.get(gadget)
    return {"gadget": gadget, "kind": spec.kind, "start": 100.0, "end": 103.0, "events": 0, "lost": {},
            "params": {n: p.default for n, p in spec.params.items()}, "targets": "this host",
            "mode": "this host"} | kw


def test_empty_tcptracer_says_it_sees_only_new_connections():
    notes = kind_of(catalog.get("tcptracer")).empty_notes(_attrs("tcptracer"))
    assert notes[0] == "Nothing was seen in 3.0 s: this host did nothing that tcptracer traces while it ran."
    assert any("only connections opened, accepted or closed while it runs" in n for n in notes)
    assert notes[-1].startswith("Try a longer --timeout")


def test_empty_result_names_the_filter_that_narrowed_it_and_the_process():
    attrs = _attrs("opensnoop", targets="pid 4242", params={"failed": True})
    notes = kind_of(catalog.get("opensnoop")).empty_notes(attrs)
    assert notes[0].startswith("Nothing was seen in 3.0 s: process 4242 did nothing that opensnoop traces")
    assert "--failed keeps only some events; run without it to see the rest." in notes


def test_empty_result_of_a_gadget_without_a_hint_or_filters():
    notes = empty_result({"gadget": "mystery", "targets": "containers web"})
    assert notes == ["Nothing was seen: containers web did nothing that mystery traces while it ran.",
                     "Try a longer --timeout, or make the activity happen while the gadget runs."]


def test_summary_names_the_mode_and_top_rows():
    line = summary_line(_attrs("execsnoop", events=1234, mode="cluster kind-gb, namespace shop",
                               targets="pods shop/api-1"))
    assert line == "execsnoop: 1,234 events, 0 lost, 3.0 s · cluster kind-gb, namespace shop · pods shop/api-1"
    top = summary_line(_attrs("tcptop", events=12, intervals=4))
    assert top == "tcptop: 12 rows over 4 intervals, 0 lost, 3.0 s · this host"
