"""bindsnoop on the real kernel: IPv4 and IPv6, TCP and UDP, options and failures."""

import os
import socket

import pytest
from support.workloads import comm_of_self

import gadgetbook

pytestmark = pytest.mark.root


def _bind(family, kind, addr, port=0, reuse=False):
    s = socket.socket(family, kind)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    return s


def test_ipv4_and_ipv6_binds_with_protocol_port_options():
    r = gadgetbook.start("bindsnoop", pid=os.getpid())
    tcp4 = _bind(socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1", reuse=True)
    udp6 = _bind(socket.AF_INET6, socket.SOCK_DGRAM, "::1")
    port4, port6 = tcp4.getsockname()[1], udp6.getsockname()[1]
    # A second bind to the same port fails: the row keeps the error.
    with pytest.raises(OSError):
        _bind(socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1", port4)
    r.stop()
    tcp4.close()
    udp6.close()
    df = r.result()
    assert (df.pid == os.getpid()).all() and (df.comm == comm_of_self()).all()

    v4 = df[(df.ip == 4) & (df.error == "")].iloc[0]
    assert (v4.protocol, v4.addr, v4.options) == ("TCP", "127.0.0.1", "R")
    assert v4.port == 0  # asked the kernel to pick: bind(2) saw port 0
    v6 = df[df.ip == 6].iloc[0]
    assert (v6.protocol, v6.addr, v6.port, v6.error, v6.options) == ("UDP", "::1", 0, "", "")
    failed = df[df.error != ""].iloc[0]
    assert (failed.port, failed.error) == (port4, "EADDRINUSE")
    assert port6 > 0


def test_explicit_port_is_reported():
    probe = _bind(socket.AF_INET6, socket.SOCK_STREAM, "::1")
    port = probe.getsockname()[1]
    probe.close()
    r = gadgetbook.start("bindsnoop", pid=os.getpid())
    s = _bind(socket.AF_INET6, socket.SOCK_STREAM, "::1", port)
    r.stop()
    s.close()
    row = r.result().iloc[-1]
    assert (row.ip, row.addr, row.port, row.protocol, row.error) == (6, "::1", port, "TCP", "")
