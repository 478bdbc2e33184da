"""The live views from plain Python (no kernel, no browser): the header names where a run goes and counts what
its rows are; the table's height is fixed by its row count; a top table replaces its rows each interval, in
the sort order it shows. A source with nothing behind it feeds the Run: only the views are under test here."""

import re

import numpy as np
from support.idle import IdleSource

from gadgetbook import catalog
from gadgetbook.frames.top import TopDecoder, order_rows
from gadgetbook.kinds import kind_of
from gadgetbook.run_handle import Run
from gadgetbook.views.live import LiveTable
from gadgetbook.views.top import TopTable
from tests.unit.test_result_view import execsnoop_batch


def run_of(gadget: str, params=None) -> Run:
    kind = kind_of(catalog.get(gadget))
    run = Run(gadget, params or {}, [IdleSource()], kind.columns(), kind=kind, targets="this host")
    return run


def test_live_header_names_the_mode_and_the_rate_and_the_height_is_fixed():
    run = run_of("execsnoop")
    run.mode = "cluster kind-gb, namespace shop"
    run.targets = "pods shop/api-1"
    try:
        view = LiveTable(run, max_rows=5, refresh=0)
        view.render(force=True)
        empty_table = view.table.value
        batch, _ = execsnoop_batch(8, args="python3 " + "-c " * 60 + "x")
        view.add(batch)
        run.counters.events = 8
        view.render(force=True)
    finally:
        run.stop()
    header = view.counters.value
    assert "execsnoop</b> · cluster kind-gb, namespace shop · pods shop/api-1 &middot; 8 events" in header
    assert 'style="height: 136px; overflow: hidden"' in empty_table and 'style="height: 136px;' in view.table.value
    assert view.table.value.count("<tr>") == 1 + 5  # the newest rows only
    assert "…" in view.table.value and "args_truncated" not in view.table.value


class FakeTopKeys:
    """Two intervals of tcptop's map read back, as the kernel side fills them."""

    @staticmethod
    def interval(spec, sent):
        layout = spec.top_layout
        keys = np.zeros(len(sent), dtype=layout.key)
        values = np.zeros(len(sent), dtype=layout.value)
        keys["pid"] = np.arange(len(sent)) + 100
        values["comm"] = b"curl"
        keys["af_raw"] = 2
        values["sent"] = sent
        return keys, values


def test_top_table_replaces_rows_in_sort_order_and_counts_rows_and_intervals():
    spec = catalog.get("tcptop")
    run = run_of("tcptop", {"interval": 1.0, "sort": "-sent", "max_rows": 0})
    decoder = TopDecoder(spec, "host", _NoNames())
    try:
        view = TopTable(run, max_rows=10, refresh=0)
        for i, sent in enumerate(([5, 500, 50], [7, 70000, 700, 7000])):
            keys, values = FakeTopKeys.interval(spec, sent)
            batch = order_rows(decoder.decode(keys, values, 1_000_000_000 * (i + 1)), (("sent", True),), 0)
            view.add(batch)
            run.counters.events += len(sent)
        view.render(force=True)
    finally:
        run.stop()
    header = view.counters.value
    assert "7 rows over 2 intervals" in header and "events" not in header and "4 in the newest" in header
    table = view.table.value
    assert "sent ▼" in table
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]]
    assert [r[heads.index("sent ▼")] for r in rows] == ["68.4 KiB", "6.8 KiB", "700 B", "7 B"]


class _NoNames:
    def names(self, mntns_ids):
        return [("", "", "")] * len(mntns_ids)
