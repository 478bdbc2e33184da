"""A tiny DNS server for labs and tests: A and AAAA records from a fixed table, NXDOMAIN for any other
name, over UDP and TCP, IPv4 and IPv6. Needs only Python and dnspython, so it runs inside a lab container.

    python3 dns_server.py --port 53 web.lab.test=10.213.50.2 api.lab.test=10.213.50.3,fd00::3
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import socketserver
import threading
import time


def answer(wire: bytes, records: dict[str, list[str]], delay: float = 0.0) -> bytes:
    """The response to one query: its name's addresses of the asked type, or NXDOMAIN for an unknown name."""
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdatatype
    import dns.rrset

    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if delay:
        time.sleep(delay)
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response.to_wire()
    q = query.question[0]
    name = q.name.to_text(omit_final_dot=True).lower()
    if name not in records:
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()
    version = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(q.rdtype)
    addresses = [a for a in records[name] if ipaddress.ip_address(a).version == version]
    if addresses:
        response.answer.append(dns.rrset.from_text_list(q.name, 60, "IN", q.rdtype, addresses))
    return response.to_wire()


class _Udp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(answer(data, self.server.records, self.server.delay), self.client_address)


class _Tcp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            head = self.request.recv(2)
            if len(head) < 2:
                return
            size = int.from_bytes(head, "big")
            data = b""
            while len(data) < size:
                chunk = self.request.recv(size - len(data))
                if not chunk:
                    return
                data += chunk
            reply = answer(data, self.server.records, self.server.delay)
            self.request.sendall(len(reply).to_bytes(2, "big") + reply)


class _DualStack:
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True

    def server_bind(self) -> None:
        # One socket for both families: IPv4 clients arrive as ::ffff:a.b.c.d.
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class UdpServer(_DualStack, socketserver.ThreadingUDPServer):
    pass


class TcpServer(_DualStack, socketserver.ThreadingTCPServer):
    pass


def serve(records: dict[str, list[str]], port: int = 53, delay: float = 0.0) -> list[socketserver.BaseServer]:
    """Start the UDP and TCP servers on every address; returns them (call shutdown() to stop)."""
    servers: list[socketserver.BaseServer] = []
    for cls, handler in ((UdpServer, _Udp), (TcpServer, _Tcp)):
        srv = cls(("::", port), handler)
        srv.records, srv.delay = records, delay
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    return servers


def parse_records(items: list[str]) -> dict[str, list[str]]:
    """`name=addr[,addr...]` items as a table."""
    out: dict[str, list[str]] = {}
    for item in items:
        name, _, addrs = item.partition("=")
        out.setdefault(name.lower().rstrip("."), []).extend(a for a in addrs.split(",") if a)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="A tiny DNS server for labs (A/AAAA from a table, NXDOMAIN otherwise).")
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--delay-ms", type=float, default=0.0, help="wait this long before each answer")
    p.add_argument("records", nargs="*", metavar="NAME=ADDR[,ADDR]")
    ns = p.parse_args(argv)
    serve(parse_records(ns.records), ns.port, ns.delay_ms / 1000)
    print(f"dns server on port {ns.port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
