"""The dns gadget on a real lab network: a tiny DNS server in one container, clients in another, queries over
UDP and TCP, IPv4 and IPv6; every query shows with its name, type, answer and latency, NXDOMAIN as such."""

import shutil
import tempfile
import time

import pytest
from support.workloads import marker

import gadgetbook
from gadgetbook.labs import dns_server
from gadgetbook.labs.network import LabNetwork
from gadgetbook.labs.podman import PYTHON_ENV, LabContainer, busybox_rootfs, python_volumes

pytestmark = [pytest.mark.root, pytest.mark.containers]
DELAY_MS = 40
QUERY = """
import sys, dns.message, dns.query
server, name, qtype, tcp = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "tcp"
q = dns.message.make_query(name, qtype)
r = (dns.query.tcp if tcp else dns.query.udp)(q, server, timeout=5)
print(r.rcode())
"""


@pytest.fixture(scope="module")
def lab():
    """A DNS server answering web.lab.test (v4 and v6) after DELAY_MS, a client with Python and busybox."""
    tag = marker("dns")
    root = busybox_rootfs()
    files = tempfile.mkdtemp(prefix="gadgetbook-dns-test-")
    shutil.copy(dns_server.__file__, f"{files}/dns_server.py")
    (open(f"{files}/query.py", "w")).write(QUERY)
    net = LabNetwork(subnet="10.213.52.0/24", subnet6="fd00:213:52::/64")
    made = []
    try:
        volumes = [*python_volumes(), (files, "/lab")]
        server = LabContainer(root, f"dns-{tag}", f"exec python3 /lab/dns_server.py --delay-ms {DELAY_MS} "
                              "web.lab.test=10.213.52.80,fd00:213:52::80", {"app": "dns", "t": tag},
                              volumes=volumes, env=PYTHON_ENV)
        made.append(server)
        server_ip, server_ip6 = net.attach(server.pid)
        client = LabContainer(root, f"client-{tag}", "sleep 600", {"app": "client", "t": tag}, volumes=volumes,
                              env=PYTHON_ENV)
        made.append(client)
        net.attach(client.pid)
        yield {"tag": tag, "server": server, "client": client, "ip": server_ip, "ip6": server_ip6}
    finally:
        for c in made:
            c.remove()
        net.close()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(files, ignore_errors=True)


def _ask(client, server, name, qtype, proto="udp"):
    return client.exec("python3", "/lab/query.py", server, name, qtype, proto).strip()


@pytest.fixture(scope="module")
def seen(lab):
    """The client's queries: A and AAAA over UDP/IPv4, UDP/IPv6 and TCP/IPv4, an unknown name, busybox nslookup."""
    client, ip, ip6 = lab["client"], lab["ip"], lab["ip6"]
    with gadgetbook.start("dns", container=client.name, timeout=60) as run:
        time.sleep(0.3)
        asked = [(ip, "web.lab.test", "A", "udp"), (ip6, "web.lab.test", "AAAA", "udp"),
                 (ip, "web.lab.test", "A", "tcp"), (ip6, "web.lab.test", "AAAA", "tcp"),
                 (ip, "nope.lab.test", "A", "udp")]
        codes = [_ask(client, *a) for a in asked]
        client.exec("nslookup", "web.lab.test", ip)
        time.sleep(0.5)
        run.stop()
    return asked, codes, run.conclude()


def test_every_query_and_its_response_show(lab, seen):
    asked, codes, df = seen
    assert codes == ["0", "0", "0", "0", "3"]  # NOERROR x4, NXDOMAIN
    assert set(df.container) == {lab["client"].name}  # the server's own packets are not the client's
    mine = df[df.comm == "python3"]  # the Python client's; busybox nslookup is checked below
    sent = mine[(mine.direction == "sent") & (mine.qr == "query")]
    got = mine[(mine.direction == "received") & (mine.qr == "response")]
    for server, name, qtype, proto in asked:
        q = sent[(sent.server == server) & (sent.name == name) & (sent.qtype == qtype) & (sent.proto == proto.upper())]
        r = got[(got.server == server) & (got.name == name) & (got.qtype == qtype) & (got.proto == proto.upper())]
        assert len(q) == 1 and len(r) == 1, (server, name, qtype, proto)
        assert r.id.iloc[0] == q.id.iloc[0] and r.pid.iloc[0] == q.pid.iloc[0]
        assert (r.ip == (6 if ":" in server else 4)).all()


def test_answers_codes_and_latency(lab, seen):
    _, _, df = seen
    got = df[(df.direction == "received") & (df.comm == "python3")]
    by = {(n, t, p): row for n, t, p, row in zip(got.name, got.qtype, got.proto, got.itertuples())}
    assert by[("web.lab.test", "A", "UDP")].answers == "10.213.52.80"
    assert by[("web.lab.test", "AAAA", "TCP")].answers == "fd00:213:52::80"
    nx = by[("nope.lab.test", "A", "UDP")]
    assert nx.rcode == "NXDOMAIN" and nx.answers == "" and nx.ancount == 0
    assert set(got.rcode) == {"NOERROR", "NXDOMAIN"}
    # The server waits DELAY_MS before each answer: the latency is at least that, and not absurdly more.
    ms = got.latency.dt.total_seconds() * 1000
    assert (ms >= DELAY_MS).all() and (ms < DELAY_MS + 2000).all(), ms.tolist()
    assert df[df.direction == "sent"].latency.isna().all()


def test_busybox_nslookup_is_seen_too(lab, seen):
    _, _, df = seen
    ns = df[(df.comm == "nslookup") & (df.direction == "received")]
    assert set(ns.qtype) == {"A", "AAAA"} and set(ns.name) == {"web.lab.test"}
    assert set(ns.answers) == {"10.213.52.80", "fd00:213:52::80"}


def test_the_server_side_shows_its_answers_when_selected(lab):
    client, ip = lab["client"], lab["ip"]
    with gadgetbook.start("dns", selector=f"t={lab['tag']}", timeout=30) as run:
        time.sleep(0.3)
        _ask(client, ip, "web.lab.test", "A")
        time.sleep(0.3)
        run.stop()
    df = run.conclude()
    answers = df[(df.container == lab["server"].name) & (df.direction == "sent")]
    assert len(answers) == 1 and answers.qr.iloc[0] == "response" and answers.comm.iloc[0] == "python3"
    assert answers.answers.iloc[0] == "10.213.52.80"
