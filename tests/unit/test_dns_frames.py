"""The dns gadget's message columns: real DNS messages (made with dnspython) in the event layout the kernel
side fills, decoded in bulk: names, types, codes, answers, servers, and messages cut short."""

import dns.message
import dns.rrset
import numpy as np

from gadgetbook import catalog
from gadgetbook.frames.decode import Decoder, NoContainers


def _events(messages):
    """Events as the kernel side writes them: the message's first 512 bytes, its size, the addresses."""
    dtype = catalog.get("dns").event_dtype
    ev = np.zeros(len(messages), dtype=dtype)
    for i, (wire, direction, src, dst, captured) in enumerate(messages):
        n = min(len(wire), captured)
        ev["dns_raw"][i, :n] = np.frombuffer(wire[:n], np.uint8)
        ev["dns_raw"][i, n:] = 0xAB  # what an unzeroed ring slot holds past the copy
        ev["dns_captured"][i], ev["dns_size"][i] = n, len(wire)
        ev["direction_raw"][i], ev["proto_raw"][i], ev["af_raw"][i] = direction, 17, 2
        ev["saddr_raw"][i, :4], ev["daddr_raw"][i, :4] = src, dst
        ev["latency_raw"][i] = 1_500_000 if direction == 2 else 0
    return ev


def _response(query, rcode=0, addresses=()):
    r = dns.message.make_response(query)
    r.set_rcode(rcode)
    if addresses:
        r.answer.append(dns.rrset.from_text_list(query.question[0].name, 60, "IN", "A", list(addresses)))
    return r


def test_queries_and_responses_become_columns():
    q = dns.message.make_query("web.lab.test", "A")
    ok = _response(q, addresses=["10.0.0.2", "10.0.0.3"])
    q6 = dns.message.make_query("nope.lab.test", "AAAA")
    nx = _response(q6, rcode=3)
    client, server = [10, 0, 0, 9], [10, 0, 0, 53]
    ok_wire = ok.to_wire()  # dnspython may order the records differently each time it writes them
    ev = _events([(q.to_wire(), 1, client, server, 512), (ok_wire, 2, server, client, 512),
                  (q6.to_wire(), 1, client, server, 512), (nx.to_wire(), 2, server, client, 512)])
    out = Decoder(catalog.get("dns"), "n", NoContainers()).decode(ev)
    col = lambda c: out[c].values().tolist() if hasattr(out[c], "values") else out[c].tolist()  # noqa: E731
    assert col("qr") == ["query", "response", "query", "response"]
    assert col("name") == ["web.lab.test", "web.lab.test", "nope.lab.test", "nope.lab.test"]
    assert col("qtype") == ["A", "A", "AAAA", "AAAA"]
    assert col("rcode") == ["", "NOERROR", "", "NXDOMAIN"]
    answers = col("answers")
    assert answers[0] == answers[2] == answers[3] == ""
    # In the order the records are on the wire.
    wire = [rr.to_text() for rrset in dns.message.from_wire(ok_wire, one_rr_per_rrset=True).answer
            for rr in rrset]
    assert answers[1].split(",") == wire and sorted(wire) == ["10.0.0.2", "10.0.0.3"]
    assert col("server") == ["10.0.0.53"] * 4
    assert col("id") == [q.id, q.id, q6.id, q6.id]
    assert col("direction") == ["sent", "received", "sent", "received"]
    assert col("truncated") == [False] * 4
    latency = out["latency"]
    assert np.isnat(latency[0]) and latency[1] == np.timedelta64(1_500_000, "ns")


def test_same_message_with_other_ids_parses_once_and_keeps_each_id():
    queries = [dns.message.make_query("api.lab.test", "A") for _ in range(50)]
    ev = _events([(m.to_wire(), 1, [1, 2, 3, 4], [5, 6, 7, 8], 512) for m in queries])
    out = Decoder(catalog.get("dns"), "n", NoContainers()).decode(ev)
    assert len(out["name"].categories) == 1 and out["id"].tolist() == [m.id for m in queries]


def test_a_message_cut_by_the_capture_keeps_its_question():
    q = dns.message.make_query("big.lab.test", "A")
    r = _response(q, addresses=[f"10.0.{i // 250}.{i % 250}" for i in range(100)])
    ev = _events([(r.to_wire(), 2, [5, 6, 7, 8], [1, 2, 3, 4], 512)])
    out = Decoder(catalog.get("dns"), "n", NoContainers()).decode(ev)
    assert out["name"].values().tolist() == ["big.lab.test"]
    assert out["truncated"].tolist() == [True]
    assert 0 < len(out["answers"].values()[0].split(",")) < 100
