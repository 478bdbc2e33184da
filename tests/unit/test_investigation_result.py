"""An Investigation made of runs recorded one by one: joins work across them, and recordings that do not
belong together are refused in one sentence."""

import pandas as pd
import pytest

from gadgetbook.errors import GadgetError
from gadgetbook.investigation import Investigation


def _run(gadget: str, targets: str, rows: dict) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.attrs.update({"gadget": gadget, "targets": targets, "events": len(df)})
    return df


T = pd.Timestamp("2026-12-01 12:00:00")
DNS = _run("dns", "containers app", {
    "timestamp": [T], "node": ["n"], "namespace": [""], "pod": [""], "container": ["app"], "pid": [7],
    "comm": ["curl"], "qr": ["response"], "direction": ["received"], "name": ["db.shop"], "answers": ["10.0.0.5"]})
CONNS = _run("tcptracer", "containers app", {
    "timestamp": [T + pd.Timedelta("1s"), T - pd.Timedelta("1s")], "node": ["n", "n"], "namespace": ["", ""],
    "pod": ["", ""], "container": ["app", "app"], "pid": [7, 7], "comm": ["curl", "curl"],
    "type": ["connect", "connect"], "daddr": ["::ffff:10.0.0.5", "10.0.0.5"], "dport": [5432, 5432]})
EXECS = _run("execsnoop", "containers app", {
    "timestamp": [T - pd.Timedelta("2s")], "node": ["n"], "namespace": [""], "pod": [""], "container": ["app"],
    "pid": [7], "comm": ["curl"], "ret": [0], "path": ["/usr/bin/curl"], "args": ["curl db.shop:5432"]})


def test_recordings_joined_as_one_investigation():
    inv = Investigation.from_recordings([EXECS, DNS, CONNS])
    conns = inv["tcptracer"]
    # After the lookup (an IPv4 address on an IPv6 socket too) the name; before it, none.
    assert conns.remote_name.tolist() == ["db.shop", ""]
    assert conns.exe.tolist() == ["/usr/bin/curl"] * 2 and set(conns.cmdline) == {"curl db.shop:5432"}
    assert inv.facts["targets"] == "containers app"


def test_recordings_of_different_targets_or_twice_the_same_gadget_are_refused():
    other = _run("dns", "containers web", DNS.to_dict("list"))
    with pytest.raises(GadgetError, match="traced different targets"):
        Investigation.from_recordings([CONNS, other])
    with pytest.raises(GadgetError, match="Two recordings are of dns"):
        Investigation.from_recordings([DNS, DNS])
