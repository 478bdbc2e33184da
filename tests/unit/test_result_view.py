"""The one result view: columns in the gadget's order with empty ones left out, short one-line cells, the same
columns live and final, and the static HTML that a saved notebook keeps."""

import re

import numpy as np
import pandas as pd

from gadgetbook import catalog
from gadgetbook.frames.decode import Decoder, NoContainers
from gadgetbook.frames.formats import ip_addresses
from gadgetbook.kinds import kind_of
from gadgetbook.views.result import result_html
from gadgetbook.views.table import Layout, cell, filled


def execsnoop_batch(n=3, args="sh -c true"):
    spec = catalog.get("execsnoop")
    raw = np.zeros(n, dtype=spec.event_dtype)
    raw["timestamp_raw"] = np.arange(n) * 1_000_000
    raw["pid"] = np.arange(n) + 100
    raw["comm"] = b"sh"
    raw["path"] = b"/bin/sh"
    raw["ret"] = [0] * (n - 1) + [-2]
    block = b"\0".join(args.encode().split(b" ")) + b"\0"
    raw["args_raw"] = block
    raw["args_size"] = len(block)
    raw["args_count"] = len(args.split())
    return Decoder(spec, "host-1", NoContainers()).decode(raw), spec


def test_gadget_columns_first_common_after_and_empty_ones_hidden():
    batch, spec = execsnoop_batch()
    layout = Layout.for_kind(kind_of(spec), list(batch))
    shown = layout.shown(filled(batch, layout.order))
    own = [c.name for c in spec.event_columns if not c.hidden]
    assert shown[: 3] == ["ppid", "error", "path"]  # args_truncated is False everywhere: an empty column
    assert "args_truncated" not in shown and set(shown) - set(own) <= {"timestamp", "comm", "pid", "uid"}
    # No container, pod, namespace (nothing is in one); node only where pods are named; ids never.
    assert not {"container", "pod", "namespace", "node", "tid", "gid", "mntns_id"} & set(shown)


def test_cells_are_short_and_one_line():
    stamp = np.datetime64("2026-12-01T17:42:21.813456789")
    assert cell("timestamp", stamp).text == "17:42:21.813"
    assert cell("timestamp", stamp).title == "2026-12-01 17:42:21.813456789"
    assert cell("sent", 123_456_789, "bytes").text == "117.7 MiB"
    assert cell("sent", 123_456_789, "bytes").title == "123,456,789 bytes"
    assert cell("sent", 512, "bytes").text == "512 B"
    assert cell("count", 1234567, "count").text == "1,234,567"
    assert cell("pid", 123456).text == "123456"  # ids get no separators
    long = cell("args", "x" * 200 + "\nnext")
    assert len(long.text) == 60 and long.text.endswith("…") and long.title.startswith("x" * 200)
    assert cell("args_truncated", False).text == "" and cell("args_truncated", True).text == "yes"


def test_ipv4_on_an_ipv6_socket_is_written_as_ipv4():
    addrs = np.zeros((2, 16), dtype=np.uint8)
    addrs[0, :4] = [10, 0, 0, 4]
    addrs[1, 10:12] = 0xFF
    addrs[1, 12:16] = [10, 0, 0, 4]
    text = ip_addresses(np.array([2, 10], dtype=np.uint16), addrs).values().tolist()
    assert text == ["10.0.0.4", "10.0.0.4"]


def test_execsnoop_error_is_a_name():
    batch, _ = execsnoop_batch()
    assert batch["error"].values().tolist() == ["", "", "ENOENT"]


def frame(n):
    batch, spec = execsnoop_batch(n, args="python3 " + "-c " * 40 + "long")
    from gadgetbook.frames.dataframe import to_dataframe

    attrs = {"gadget": "execsnoop", "kind": "trace", "events": n, "lost": {}, "mode": "this host",
             "targets": "this host", "start": 1.0, "end": 2.0, "notes": ["A note."]}
    return to_dataframe([batch], list(batch), attrs, kind_of(spec).categorical)


def test_static_view_has_summary_notes_and_head_and_tail():
    html = result_html(frame(50), preview_rows=10)
    assert "execsnoop: 50 events, 0 lost, 1.0 s · this host" in html and "<li>A note.</li>" in html
    assert html.count("<tr>") == 1 + 10  # header + 5 first and 5 last rows (the gap row has its own class)
    assert "… 40 more rows (all 50 are in the DataFrame) …" in html
    head = re.search(r"<thead><tr>(.*?)</tr></thead>", html).group(1)
    assert re.findall(r"<th[^>]*>([^<]*)</th>", head)[:3] == ["ppid", "error", "path"]
    assert 'title="python3 -c' in html  # the cut argv, whole on hover


def test_short_result_is_shown_whole():
    html = result_html(frame(3))
    assert html.count("<tr>") == 4 and "more rows" not in html
    assert isinstance(frame(3).timestamp.dtype, np.dtypes.DateTime64DType) or pd.api.types.is_datetime64_any_dtype(
        frame(3).timestamp)
