"""tcptop on the real kernel: byte totals over loopback, per-interval sorting and cuts, and bad settings."""

import os
import socket
import threading

import pytest
from support.hook_paths import starter
from support.syscalls import refusal

import gadgetbook
from gadgetbook.errors import GadgetError

pytestmark = pytest.mark.root


BTF = ["tpbtf_sock_send_length", "tpbtf_sock_recv_length"]
CLASSIC = ["tp_sock_send_length", "tp_sock_recv_length"]


@pytest.fixture(params=["tp_btf", "classic tracepoints"])
def start(request, monkeypatch):
    """gadgetbook.start for tcptop through its BTF tracepoints or its fallback (as on a kernel without them)."""
    if request.param == "tp_btf":
        return starter("tcptop", monkeypatch, attached=BTF)
    return starter("tcptop", monkeypatch, attached=CLASSIC, avoid=BTF)


def _pair(family=socket.AF_INET, addr="127.0.0.1"):
    srv = socket.socket(family)
    srv.bind((addr, 0))
    srv.listen()
    client = socket.create_connection((addr, srv.getsockname()[1]))
    server, _ = srv.accept()
    srv.close()
    return client, server


def _transfer(sender, receiver, nbytes, chunk=1 << 16):
    def drain():
        got = 0
        while got < nbytes:
            got += len(receiver.recv(1 << 20))

    t = threading.Thread(target=drain)
    t.start()
    buf = b"z" * chunk
    sent = 0
    while sent < nbytes:
        sent += sender.send(buf[: min(chunk, nbytes - sent)])
    t.join()


def test_totals_match_bytes_sent_each_way(start):
    up, down = 30_000_000, 7_654_321
    client, server = _pair()
    with start(pid=os.getpid(), interval=0.2) as r:
        _transfer(client, server, up)
        _transfer(server, client, down, chunk=4096)
        r.stop()
    df = r.result()
    cport, sport = client.getsockname()[1], server.getsockname()[1]
    client.close()
    server.close()
    totals = df.groupby("sport")[["sent", "received"]].sum()
    for port, sent, received in ((cport, up, down), (sport, down, up)):
        assert totals.loc[port, "sent"] == pytest.approx(sent, rel=0.01)
        assert totals.loc[port, "received"] == pytest.approx(received, rel=0.01)
    assert set(zip(df.sport, df.dport)) == {(cport, sport), (sport, cport)}
    assert (df.pid == os.getpid()).all() and set(df.ip) == {4}
    assert set(df.saddr) == {"127.0.0.1"} and set(df.daddr) == {"127.0.0.1"}
    assert df.timestamp.nunique() >= 1 and df.attrs["lost"] == {df.attrs["nodes"][0]: 0}


def test_ipv6_and_the_last_partial_interval_are_counted(start):
    client, server = _pair(socket.AF_INET6, "::1")
    # A long interval: everything arrives in the reading taken when the run stops.
    with start(pid=os.getpid(), interval=60) as r:
        _transfer(client, server, 123_456)
        r.stop()
    df = r.result()
    client.close()
    server.close()
    assert set(df.ip) == {6} and set(df.saddr) == {"::1"}
    assert df.sent.sum() == 123_456 and df.received.sum() == 123_456


def test_rows_per_interval_are_sorted_and_cut():
    pairs = [_pair() for _ in range(3)]
    with gadgetbook.start("tcptop", pid=os.getpid(), interval=0.3, sort="-sent", max_rows=2) as r:
        for i, (client, server) in enumerate(pairs):
            _transfer(client, server, 10_000 * (i + 1))
        r.stop()
    df = r.result()
    for _, rows in df.groupby("timestamp"):
        assert len(rows) <= 2
        assert list(rows.sent) == sorted(rows.sent, reverse=True)
    biggest = pairs[2][0].getsockname()[1]
    assert biggest in set(df.sport)
    for client, server in pairs:
        client.close()
        server.close()


@pytest.mark.parametrize("kwargs, message", [
    ({"sort": "-bogus"}, "tcptop cannot sort by 'bogus'; sort by one of"),
    ({"interval": 0}, "--interval must be a positive number of seconds"),
    ({"interval": -1}, "--interval must be a positive number of seconds"),
    ({"selector": "app=nobody-here"}, "No running container on this host matches -l app=nobody-here"),
])
def test_bad_settings_are_one_sentence_and_load_nothing(kwargs, message):
    with pytest.raises(GadgetError, match=message) as info:
        gadgetbook.start("tcptop", **kwargs)
    assert "\n" not in str(info.value)
    # In a process of its own under strace: not one bpf() call, so nothing was ever loaded.
    sentence, calls = refusal(f"gadgetbook.start('tcptop', **{kwargs!r})")
    assert sentence == str(info.value)
    assert calls == []


def test_cli_sort_flag_takes_a_descending_key():
    from gadgetbook.options import parse_run

    req = parse_run(["tcptop", "--sort", "-received", "--interval", "2", "--max-rows", "5"])
    assert req.params == {"interval": 2.0, "max_rows": 5, "sort": "-received"}
