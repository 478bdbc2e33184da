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
    t = prof.tree()
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
    t = prof.tree()
    assert t.share(t.matching("hot_")) == pytest.approx(0.90)
    assert t.share(t.matching("HOT_LEAF")) == pytest.approx(0.85)
    assert t.share(t.matching("zzz")) == 0


def test_widget_zoom_search_reset_without_a_browser(prof):
    w = prof.flamegraph()
    assert w.total == 100 and w.zoom == "" and w.zoom_total == 100
    recs = np.frombuffer(w.nodes, dtype=NODE_DTYPE)
    assert {w.names[i] for i in recs["name"]} >= {"all", "app", "main", "hot_mid", "hot_leaf", "cold"}
    # A click in the page arrives as a message naming the node.
    leaf = w.tree.find("app;main;hot_mid")
    w._on_frontend_msg(w, {"type": "zoom", "node": int(leaf)}, [])
    assert w.zoom == "app;main;hot_mid" and w.zoom_total == 90 and w.zoom_node == leaf
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
    # One entry per container (the host's frames under "(host)"), each with the hue its frames are drawn in.
    assert w.legend == [["(host)", flamegraph.CONTAINER_HUES[0]], ["web", flamegraph.CONTAINER_HUES[1]]]
    for (name, hue), path in zip(w.legend, ("app;main;cold", "app;main;hot_mid;entry_SYSCALL_64")):
        drawn, legend = _drawn_rgb(w, path), _rgb(hue)
        # a frame's shade varies by its name, between 85% and 100% of its container's hue
        assert np.all(drawn <= legend + 1 / 255) and np.all(drawn >= 0.85 * legend - 1 / 255), (name, path)
    assert prof.flamegraph().legend == [["user", "#e6591a"], ["kernel", "#40a6a6"], ["process", "#b2b2b2"]]

    before = profile([(10, "app", "", "main;hot_mid;hot_leaf", "", 50), (10, "app", "", "main;cold", "", 50)])
    d = prof.diff(before)
    tree = d.tree()
    assert tree.delta[tree.find("app;main;hot_mid;hot_leaf")] > 0.3
    assert tree.delta[tree.find("app;main;cold")] < -0.3
    assert d.frame.loc["app;main;cold", "delta"] == pytest.approx(0.1 - 0.5)
    dw = d.flamegraph()
    assert dw.color_by == "diff" and dw.legend == [["grew", "#ff4040"], ["shrank", "#4040ff"]]
    grew, shrank = _drawn_rgb(dw, "app;main;hot_mid;hot_leaf"), _drawn_rgb(dw, "app;main;cold")
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
