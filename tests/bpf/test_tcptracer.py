"""tcptracer on the real kernel: connections between two network namespaces the test creates, and IPv6 on loopback."""

import os
import socket
import subprocess
import sys
import time

import pytest
from support.netns import NetnsPair
from support.syscalls import refusal
from support.workloads import stop_when

import gadgetbook

pytestmark = pytest.mark.root
PORT = 8347
N = 12
REQUEST, REPLY = 300, 1700

SERVER = f"""
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], {PORT})); s.listen(64)
print('ready', flush=True)
for _ in range({N}):
    c, _ = s.accept()
    got = 0
    while got < {REQUEST}:
        got += len(c.recv(65536))
    c.sendall(b'r' * {REPLY})
    c.close()
"""
CLIENT = f"""
import socket, sys
for _ in range({N}):
    c = socket.create_connection((sys.argv[1], {PORT}))
    c.sendall(b'q' * {REQUEST})
    got = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        got += len(b)
    assert got == {REPLY}, got
    c.close()
"""


@pytest.fixture(scope="module")
def netns_pair():
    pair = NetnsPair()
    try:
        yield pair
    finally:
        pair.close()


def _serve_and_connect(pair: NetnsPair, server_addr: str):
    server = pair.popen(pair.a, sys.executable, "-c", SERVER, server_addr, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        client = pair.popen(pair.b, sys.executable, "-c", CLIENT, server_addr)
        assert client.wait(timeout=30) == 0
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
        server.wait()
    return server.pid, client.pid


@pytest.mark.parametrize("family", [4, 6])
def test_n_connections_between_namespaces(netns_pair, family):
    pair = netns_pair
    server_addr, client_addr = (pair.addr_a, pair.addr_b) if family == 4 else (pair.addr6_a, pair.addr6_b)
    ours = {pair.inode(pair.a), pair.inode(pair.b)}
    mine = lambda df: df[df.netns.isin(ours)]  # noqa: E731 - other tests may make TCP traffic meanwhile
    with gadgetbook.start("tcptracer") as r:
        server_pid, client_pid = _serve_and_connect(pair, server_addr)
        df = mine(stop_when(r, lambda df: (mine(df).type == "close").sum() >= 2 * N))

    connects, accepts, closes = (df[df.type == t] for t in ("connect", "accept", "close"))
    assert len(connects) == N and len(accepts) == N
    assert set(connects.pid) == {client_pid} and set(accepts.pid) == {server_pid}
    assert set(connects.netns) == {pair.inode(pair.b)} and set(accepts.netns) == {pair.inode(pair.a)}
    assert (connects.ip == family).all() and (accepts.ip == family).all()
    assert set(connects.saddr) == {client_addr} and set(connects.daddr) == {server_addr}
    assert set(connects.dport) == {PORT}
    assert set(accepts.saddr) == {server_addr} and set(accepts.daddr) == {client_addr}
    assert set(accepts.sport) == {PORT}
    # The same N connections, seen from both ends.
    assert sorted(connects.sport) == sorted(accepts.dport) and connects.sport.nunique() == N

    assert len(closes) == 2 * N
    client_closes = closes[closes.pid == client_pid]
    server_closes = closes[closes.pid == server_pid]
    assert len(client_closes) == N and len(server_closes) == N
    assert (client_closes.sent == REQUEST).all() and (client_closes.received == REPLY).all()
    assert (server_closes.sent == REPLY).all() and (server_closes.received == REQUEST).all()
    assert set(client_closes.comm) == set(connects.comm)


def test_ipv6_loopback_connect_accept_close():
    with gadgetbook.start("tcptracer", pid=os.getpid()) as r:
        srv = socket.socket(socket.AF_INET6)
        srv.bind(("::1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        c = socket.create_connection(("::1", port))
        s, _ = srv.accept()
        c.sendall(b"x" * 5000)
        got = 0
        while got < 5000:
            got += len(s.recv(65536))
        s.sendall(b"y" * 70)
        c.recv(100)
        client_port = c.getsockname()[1]
        c.close()
        time.sleep(0.05)
        s.close()
        srv.close()
        df = stop_when(r, lambda df: (df.type == "close").sum() >= 2)
    assert (df.pid == os.getpid()).all()
    rows = {t: df[df.type == t] for t in ("connect", "accept", "close")}
    assert len(rows["connect"]) == 1 and len(rows["accept"]) == 1 and len(rows["close"]) == 2
    conn, acc = rows["connect"].iloc[0], rows["accept"].iloc[0]
    assert (conn.ip, conn.saddr, conn.sport, conn.daddr, conn.dport) == (6, "::1", client_port, "::1", port)
    assert (acc.ip, acc.saddr, acc.sport, acc.daddr, acc.dport) == (6, "::1", port, "::1", client_port)
    by_port = rows["close"].set_index("sport")
    assert (by_port.loc[client_port].sent, by_port.loc[client_port].received) == (5000, 70)
    assert (by_port.loc[port].sent, by_port.loc[port].received) == (70, 5000)


def test_refused_connect_is_a_connect_and_a_close():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with gadgetbook.start("tcptracer", pid=os.getpid()) as r:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port))
        df = stop_when(r, lambda df: (df.type == "close").sum() >= 1)
    assert list(df.type) == ["connect", "close"]
    assert set(df.dport) == {port} and (df.sent == 0).all() and (df.received == 0).all()


def test_selector_matching_nothing_loads_nothing():
    with pytest.raises(gadgetbook.GadgetError, match="No running container on this host matches -l app=nobody-here"):
        gadgetbook.start("tcptracer", selector="app=nobody-here")
    # In a process of its own under strace: not one bpf() call, so nothing was ever loaded.
    sentence, calls = refusal("gadgetbook.start('tcptracer', selector='app=nobody-here')")
    assert sentence.startswith("No running container on this host matches -l app=nobody-here")
    assert calls == []
