"""Flame graphs without a kernel or a browser: the tree, the widget's zoom/search state and messages,
the static image, the exports and the differential view, from a Profile built by hand."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gadgetbook.frames.profile import Profile
from gadgetbook.views import flamegraph
from gadgetbook.views.flamegraph import NODE_DTYPE, FlameGraph
from gadgetbook.views.flametree import KERNEL, USER, FlameTree


def profile(rows, seconds=2.0):
    df = pd.DataFrame(rows, columns=["pid", "comm", "container", "user_stack", "kernel_stack", "count"])
    for c in ("user_addresses", "kernel_addresses"):
        df[c] = ""
    df.attrs.update(gadget="profile", seconds=seconds, params={"frequency": 49}, targets="this host", lost={})
    return Profile(df)


@pytest.fixture
def prof():
    return profile([
        (10, "app", "", "main;hot_mid;hot_leaf", "", 80),
        (10, "app", "", "main;hot_mid;hot_leaf", "asm_sysvec_apic_timer_interrupt;schedule", 5),
        (10, "app", "", "main;cold", "", 10),
        (11, "app", "web", "main;hot_mid", "entry_SYSCALL_64;do_syscall_64", 5),
    ])


def test_folded_merges_identical_stacks_root_first(prof):
    lines = prof.folded().splitlines()
    assert "app;main;hot_mid;hot_leaf 80" in lines
    assert "app;main;hot_mid;hot_leaf;asm_sysvec_apic_timer_interrupt;schedule 5" in lines
    assert prof.folded(process=False).splitlines()[0] == "main;cold 10"
    assert prof.total == 100


def test_tree_values_layout_and_kinds(prof):
    t = prof.tree(container=False)
    assert t.total == 100
    mid = t.find("app;main;hot_mid")
    leaf = t.find("app;main;hot_mid;hot_leaf")
    assert t.value[mid] == 90 and t.value[leaf] == 85 and t.self_value[mid] == 0
    irq = t.find("app;main;hot_mid;hot_leaf;asm_sysvec_apic_timer_interrupt")
    assert t.kind[leaf] == USER and t.kind[irq] == KERNEL
    cold = t.find("app;main;cold")
    assert t.x[cold] < t.x[mid]  # siblings in name order
    assert t.x[leaf] >= t.x[mid] and t.x[leaf] + t.value[leaf] <= t.x[mid] + t.value[mid]
    assert t.find("app;nope") is None


def test_search_share_counts_nested_matches_once(prof):
    t = prof.tree(container=False)
    assert t.share(t.matching("hot_")) == pytest.approx(0.90)
    assert t.share(t.matching("HOT_LEAF")) == pytest.approx(0.85)
    assert t.share(t.matching("zzz")) == 0


def test_widget_zoom_search_reset_without_a_browser(prof):
    w = prof.flamegraph()
    assert w.total == 100 and w.zoom == "" and w.zoom_total == 100
    recs = np.frombuffer(w.nodes, dtype=NODE_DTYPE)
    # Two containers were profiled (the host and "web"): one root for each.
    assert {w.names[i] for i in recs["name"]} >= {"all", "(host)", "web", "app", "main", "hot_mid", "hot_leaf", "cold"}
    # A click in the page arrives as a message naming the node.
    leaf = w.tree.find("(host);app;main;hot_mid")
    w._on_frontend_msg(w, {"type": "zoom", "node": int(leaf)}, [])
    assert w.zoom == "(host);app;main;hot_mid" and w.zoom_total == 85 and w.zoom_node == leaf
    recs = np.frombuffer(w.nodes, dtype=NODE_DTYPE)
    names = {w.names[i] for i in recs["name"]}
    assert "cold" not in names and "hot_leaf" in names and "main" in names  # ancestors stay, as context
    w.search = "hot_leaf"
    assert w.search_share == pytest.approx(0.85) and w.search_samples == pytest.approx(85)
    w.reset()
    assert w.zoom == "" and w.zoom_total == 100
    w.zoom = "not;a;path"
    assert w.zoom == "" and w.zoom_total == 100
    state = w.get_state()
    assert state["search"] == "hot_leaf" and state["zoom"] == "" and isinstance(state["nodes"], (bytes, memoryview))
    js = (Path(flamegraph.__file__).with_name("flamegraph.js")).read_text()
    for css_class in ("gadgetbook-flamegraph", "gadgetbook-flame-search", "gadgetbook-flame-reset"):
        assert css_class in js


def _drawn_rgb(w, path: str) -> np.ndarray:
    """The color the widget sends for the frame at `path` (root first), as 0..1 RGB."""
    rec = np.frombuffer(w.nodes, dtype=NODE_DTYPE)
    (color,) = rec["color"][rec["id"] == w.tree.find(path)]
    return np.array([(int(color) >> shift) & 0xFF for shift in (16, 8, 0)]) / 255


def _rgb(css: str) -> np.ndarray:
    return np.array([int(css[i:i + 2], 16) for i in (1, 3, 5)]) / 255


def test_widget_colors_by_container_and_diff(prof):
    w = prof.flamegraph(color_by="container")
    # One entry per container (the host's frames under "(host)"), each with the hue its frames are drawn in;
    # with several containers each is a root of its own.
    assert w.legend == [["(host)", flamegraph.CONTAINER_HUES[0]], ["web", flamegraph.CONTAINER_HUES[1]]]
    for (name, hue), path in zip(w.legend, ("(host);app;main;cold", "web;app;main;hot_mid;entry_SYSCALL_64")):
        drawn, legend = _drawn_rgb(w, path), _rgb(hue)
        # a frame's shade varies by its name, between 85% and 100% of its container's hue
        assert np.all(drawn <= legend + 1 / 255) and np.all(drawn >= 0.85 * legend - 1 / 255), (name, path)
    assert prof.flamegraph().legend == [["user", "#e6591a"], ["kernel", "#40a6a6"], ["process", "#b2b2b2"]]

    before = profile([(10, "app", "", "main;hot_mid;hot_leaf", "", 50), (10, "app", "", "main;cold", "", 50)])
    d = prof.diff(before)
    tree = d.tree()
    # The after profile has two containers: both graphs get container roots, so paths match.
    assert tree.delta[tree.find("(host);app;main;hot_mid;hot_leaf")] > 0.3
    assert tree.delta[tree.find("(host);app;main;cold")] < -0.3
    assert d.frame.loc["app;main;cold", "delta"] == pytest.approx(0.1 - 0.5)
    dw = d.flamegraph()
    assert dw.color_by == "diff" and dw.legend == [["grew", "#ff4040"], ["shrank", "#4040ff"]]
    grew, shrank = _drawn_rgb(dw, "(host);app;main;hot_mid;hot_leaf"), _drawn_rgb(dw, "(host);app;main;cold")
    assert grew[0] > 0.9 and grew[2] < 0.5  # red, as the legend says
    assert shrank[2] > 0.9 and shrank[0] < 0.5  # blue
    assert d.flamegraph_image().png.startswith(b"\x89PNG")


def test_static_image_is_a_png(prof, tmp_path):
    img = prof.flamegraph_image(tmp_path / "f.png")
    assert img.png.startswith(b"\x89PNG") and (tmp_path / "f.png").read_bytes() == img.png
    assert img._repr_png_() == img.png


def test_speedscope_file(prof, tmp_path):
    doc = json.loads(prof.to_speedscope(tmp_path / "p.json").read_text())
    frames = [f["name"] for f in doc["shared"]["frames"]]
    p = doc["profiles"][0]
    assert p["type"] == "sampled" and sum(p["weights"]) == 100 == p["endValue"]
    stacks = {";".join(frames[i] for i in s): w for s, w in zip(p["samples"], p["weights"])}
    assert stacks["app;main;hot_mid;hot_leaf"] == 80


def test_empty_profile_says_no_samples():
    p = profile([], seconds=3.04)
    assert p.summary() == ("profile: no samples in 3.0 s of sampling of this host at 49 Hz; "
                           "the targets did not run on a CPU in that time (idle or blocked).")
    assert p.folded() == ""
    assert p.flamegraph_image().png.startswith(b"\x89PNG")


def test_a_hundred_thousand_stacks_stay_small_for_the_page():
    rng = np.random.default_rng(1)
    frames = np.array([f"f{i}" for i in range(2000)], dtype=object)
    stacks = [";".join(frames[rng.integers(0, 20 * (d + 1), size=1)][0] for d in range(int(k)))
              for k in rng.integers(3, 25, size=100_000)]
    tree = FlameTree.build(stacks, np.ones(100_000))
    w = FlameGraph(tree)
    assert w.message_bytes < 2_000_000
    assert len(w.nodes) // NODE_DTYPE.itemsize < 20_000


def timed_profile():
    """Two phases: hot_leaf for the first second, cold for the next, sampled 10 times each."""
    t0 = pd.Timestamp("2026-01-01 00:00:00")
    rows = []
    for i in range(10):
        rows.append((t0 + pd.Timedelta(milliseconds=100 * i), "main;hot_mid;hot_leaf"))
        rows.append((t0 + pd.Timedelta(milliseconds=1000 + 100 * i), "main;cold"))
    df = pd.DataFrame({"timestamp": [r[0] for r in rows], "node": "vm", "namespace": "", "pod": "",
                       "container": "", "pid": np.uint32(10), "tid": np.uint32(10), "comm": "app",
                       "user_stack": [r[1] for r in rows], "kernel_stack": "", "count": 1,
                       "user_addresses": "", "kernel_addresses": "", "user_locations": ""})
    df.attrs.update(gadget="profile", seconds=2.0, params={"frequency": 10}, targets="this host", lost={})
    return Profile(df)


def test_samples_keep_their_time_and_merge_by_name():
    p = timed_profile()
    assert len(p.frame) == 20 and len(p.samples) == 2 and p.total == 20
    assert p.samples["count"].tolist() == [10, 10]
    assert len(p.timeline) == 20 and set(p.timeline["row"]) == {0, 1}


def test_time_span_selection_recounts_the_graph():
    w = timed_profile().flamegraph(fallback=False)
    assert sum(w.strip) == 20 and w.strip_seconds > 0
    names = lambda: {w.names[i] for i in np.frombuffer(w.nodes, dtype=NODE_DTYPE)["name"]}  # noqa: E731
    assert {"hot_leaf", "cold"} <= names()
    w.span = [0.0, 0.95]  # the first phase only
    assert w.total == 10 and "cold" not in names() and "hot_leaf" in names()
    assert [f[0] for f in w.functions if f[0] in ("hot_leaf", "cold")] == ["hot_leaf"]
    w.span = [1.0, 2.0]
    assert w.total == 10 and "hot_leaf" not in names() and "cold" in names()
    w.reset()
    assert w.total == 20 and {"hot_leaf", "cold"} <= names()


def test_function_table_counts_self_and_total(prof):
    w = prof.flamegraph(fallback=False)
    table = {name: (own, total, kind) for name, own, total, kind in w.functions}
    assert table["hot_mid"] == (0, 90, "user") and table["hot_leaf"] == (80, 85, "user")
    assert table["schedule"] == (5, 5, "kernel") and "app" not in table  # processes are not functions
    assert [f[0] for f in w.functions][:2] == ["main", "hot_mid"]  # busiest first


def test_sandwich_shows_callers_above_and_callees_below(prof):
    w = prof.flamegraph(fallback=False)
    w._on_frontend_msg(w, {"type": "sandwich", "name": "hot_mid"}, [])
    assert w.view == "sandwich" and w.sandwich == "hot_mid" and w.zoom_total == 90
    recs = np.frombuffer(w.nodes, dtype=NODE_DTYPE)
    callers = {w.names[r["name"]]: r["depth"] for r in recs if r["flags"] & flamegraph.CALLERS}
    callees = {w.names[r["name"]]: r["depth"] for r in recs if not r["flags"] & flamegraph.CALLERS}
    assert callers["hot_mid"] == 1 and callers["main"] == 2 and callers["app"] == 3
    assert "hot_mid" not in callees and callees["hot_leaf"] == 2 and "cold" not in callers | callees
    w.view = "flame"
    assert {w.names[i] for i in np.frombuffer(w.nodes, dtype=NODE_DTYPE)["name"]} >= {"cold"}


def test_color_by_container_changes_the_legend(prof):
    w = prof.flamegraph(fallback=False)
    assert [label for label, _ in w.legend] == ["user", "kernel", "process"]
    w.color_by = "container"
    assert [label for label, _ in w.legend] == ["(host)", "web"]


def test_one_display_carries_the_static_copy(prof):
    data, _ = prof.flamegraph()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data and data["image/png"].startswith(b"\x89PNG")


def test_runs_of_unnamed_frames_fold_into_one():
    p = profile([(10, "app", "", "main;[unknown];[unknown];[unknown];leaf", "", 5),
                 (10, "app", "", "main;[unknown];leaf", "", 5)])
    t = p.tree()
    assert t.find("app;main;[unknown];leaf") is not None and t.value[t.find("app;main;[unknown];leaf")] == 10
    assert "[unknown];[unknown]" in p.folded()  # the data keeps every frame; only the graph folds them


def test_stacks_that_differ_only_in_unnamed_addresses_are_one_row():
    p = timed_profile()
    frame = p.frame.copy()
    frame["user_stack"] = "main;[unknown];leaf"
    frame["user_addresses"] = [f"0x1000;{0x2000 + i:#x};0x3000" for i in range(len(frame))]  # 20 addresses
    merged = Profile(frame)
    assert len(merged.samples) == 1 and merged.samples["count"].iloc[0] == 20
    assert merged.summary().endswith("1 processes, 1 distinct stacks, 0 lost")
