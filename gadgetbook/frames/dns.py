"""DNS messages captured by the dns gadget -> columns: query or response, id, name, type, rcode, answers, server.

Each distinct message is parsed once (the 2-byte id aside, a busy resolver repeats the same few
messages), with dnspython's wire parser, which keeps what it could read of a message cut short.
"""

from __future__ import annotations

import numpy as np

from gadgetbook.frames.coded import Coded, coded, factorize_rows

# (column, doc) in the order they follow the gadget's own columns.
COLUMNS = (
    ("qr", "query or response."),
    ("id", "DNS message id (a response carries its query's)."),
    ("name", "The name asked for (without the final dot)."),
    ("qtype", "The record type asked for: A, AAAA, CNAME, MX, ..."),
    ("rcode", "A response's code: NOERROR, NXDOMAIN, SERVFAIL, ...; empty for queries."),
    ("answers", "A response's addresses (A and AAAA records), comma-separated."),
    ("ancount", "Records in a response's answer section."),
    ("truncated", "True when the message was cut: by the server (TC bit) or by the capture (512 bytes)."),
    ("server", "The DNS server's address: the destination of a query, the source of a response."),
)
CATEGORICAL = frozenset({"qr", "name", "qtype", "rcode", "answers", "server"})
_CHUNK = 8192


def _parse(wire: bytes) -> tuple[str, str, str, str, str, int, bool]:
    """(qr, name, qtype, rcode, answers, ancount, cut) of one message, as much as could be read."""
    import dns.message
    import dns.rcode
    import dns.rdatatype

    qr = "response" if len(wire) > 2 and wire[2] & 0x80 else "query"
    try:
        msg = dns.message.from_wire(wire, ignore_trailing=True, continue_on_error=True, one_rr_per_rrset=True)
    except Exception:  # noqa: BLE001 - not even a header and question: keep the row, unnamed
        return qr, "", "", "", "", 0, True
    name = qtype = ""
    if msg.question:
        q = msg.question[0]
        name = q.name.to_text(omit_final_dot=True)
        qtype = dns.rdatatype.to_text(q.rdtype)
    addresses = [rd.to_text() for rrset in msg.answer if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
                 for rd in rrset]
    ancount = sum(len(rrset) for rrset in msg.answer)
    rcode = dns.rcode.to_text(msg.rcode()) if qr == "response" else ""
    return qr, name, qtype, rcode, ",".join(addresses), ancount, bool(getattr(msg, "errors", None))


def dns_columns(events: np.ndarray, col) -> dict[str, np.ndarray | Coded]:
    """The columns of COLUMNS from the captured messages of a batch of events."""
    from gadgetbook.frames.formats import ip_addresses

    raw = np.ascontiguousarray(events[col.field])
    sizes = events[col.options.get("size", "dns_captured")].astype(np.int64)
    wire_sizes = events[col.options.get("wire_size", "dns_size")].astype(np.int64)
    n, width = len(raw), raw.shape[1] if raw.ndim == 2 else 0
    ids = (raw[:, 0].astype(np.uint16) << 8 | raw[:, 1]) if n else np.zeros(0, np.uint16)
    # The key of a message: its bytes with the id cleared and nothing after its end (the ring
    # buffer's slot is not zeroed past what the kernel copied).
    key = raw.copy()
    key[:, :2] = 0
    for start in range(0, n, _CHUNK):
        part = key[start:start + _CHUNK]
        part[np.arange(width)[None, :] >= sizes[start:start + _CHUNK, None]] = 0
    codes, first = factorize_rows(key, sizes)
    parsed = [_parse(bytes(raw[i, :sizes[i]])) for i in first.tolist()]
    out: dict[str, np.ndarray | Coded] = {}
    for j, name in enumerate(("qr", "name", "qtype", "rcode", "answers")):
        out[name] = coded(np.arange(len(parsed)), lambda i, j=j: parsed[i][j]).take(codes)
    out["id"] = ids
    out["ancount"] = np.array([p[5] for p in parsed], dtype=np.uint16)[codes] if n else np.zeros(0, np.uint16)
    cut = np.array([p[6] for p in parsed], dtype=bool)[codes] if n else np.zeros(0, bool)
    tc = (raw[:, 2] & 0x02).astype(bool) if n else np.zeros(0, bool)
    out["truncated"] = cut | tc | (sizes < wire_sizes)
    family = events[col.options.get("family", "af_raw")]
    src = ip_addresses(family, events[col.options.get("source", "saddr_raw")])
    dst = ip_addresses(family, events[col.options.get("destination", "daddr_raw")])
    is_response = (out["qr"].categories == "response")[out["qr"].codes] if n else np.zeros(0, bool)
    out["server"] = Coded.concat([src, dst]).take(np.where(is_response, np.arange(n), n + np.arange(n)))
    return {name: out[name] for name, _ in COLUMNS}
