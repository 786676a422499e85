"""Hostile servers for the hostile-sweep test, run as their own process.

    python -m tests.reliability.hostile_servers LAB_DNS_PORT SMTP_PORT

prints one JSON line (`{"dns": port, "stalled_tls": port, "smtp": [address, port]}`) once every
listener is up, then serves until stdin closes or SIGTERM arrives.

They run outside the sweeping process on purpose: the test compares the healthy targets' probe
latency with and without hostile neighbours, and servers sharing the sweep's interpreter (and its
GIL) would measure the servers, not watchtower.

- DNS front (UDP and TCP on one port): the sweep's only resolver. Names under `garbage.test` get
  random bytes back (half of them with the query's ID, so they reach the message parser); names
  under `malformed.test` get a reply broken in one of several ways (counts that lie, a
  compression-pointer loop, an rdata length that runs past the end, a reply to another question);
  `nobanner.test` mail domains get an MX whose address is the banner-less SMTP server; every other
  query is forwarded to the lab's DNS unchanged, so healthy targets resolve as usual.
- stalled TLS: accepts TCP and never says a word, so the client's TLS handshake never completes.
- banner-less SMTP on 127.0.8.1 at the lab's SMTP port (the port is global in the fleet
  settings; a loopback address of its own keeps it apart from the lab's MTA).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import socketserver
import struct
import sys
import threading
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

NOBANNER_ADDRESS = "127.0.8.1"
GARBAGE = dns.name.from_text("garbage.test.")
MALFORMED = dns.name.from_text("malformed.test.")
NOBANNER = dns.name.from_text("nobanner.test.")
HELD: list[socket.socket] = []  # connections held open on purpose (stalled TLS, no banner)


def garbage(query: bytes) -> bytes:
    body = os.urandom(random.randint(0, 600))
    return query[:2] + body if random.random() < 0.5 else body


def malformed(query: dns.message.Message) -> bytes:
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.1"))
    wire = bytearray(reply.to_wire())
    variant = random.randrange(5)
    if variant == 0:  # answer count says 9, one record follows
        wire[6:8] = struct.pack("!H", 9)
    elif variant == 1:  # the record's owner is a compression pointer to itself
        at = len(wire) - 16
        wire[at:at + 2] = struct.pack("!H", 0xC000 | at)
    elif variant == 2:  # rdlength runs past the end of the message
        wire[-6:-4] = struct.pack("!H", 4000)
    elif variant == 3:  # cut in the middle of the record
        wire = wire[:-7]
    else:  # a well-formed reply to another question
        other = dns.message.make_query("elsewhere.example.", "TXT")
        other.id = query.id
        wire = bytearray(dns.message.make_response(other).to_wire())
    return bytes(wire)


def nobanner(query: dns.message.Message) -> bytes:
    reply = dns.message.make_response(query)
    q = query.question[0]
    if q.rdtype == dns.rdatatype.MX:
        reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", "MX", "10 mx.nobanner.test."))
    elif q.rdtype == dns.rdatatype.A and q.name == dns.name.from_text("mx.nobanner.test."):
        reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", NOBANNER_ADDRESS))
    else:
        reply.set_rcode(dns.rcode.NXDOMAIN)
    reply.flags |= dns.flags.AA
    return reply.to_wire()


def forward_udp(wire: bytes, upstream: tuple[str, int]) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(wire, upstream)
        try:
            return s.recv(65535)
        except OSError:
            return None


def forward_tcp(wire: bytes, upstream: tuple[str, int]) -> bytes | None:
    try:
        with socket.create_connection(upstream, timeout=3) as s:
            s.sendall(struct.pack("!H", len(wire)) + wire)
            size = struct.unpack("!H", recv_exact(s, 2))[0]
            return recv_exact(s, size)
    except (OSError, struct.error):
        return None


def recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise OSError("short read")
        out += chunk
    return out


def answer(wire: bytes, upstream: tuple[str, int], tcp: bool) -> bytes | None:
    try:
        query = dns.message.from_wire(wire)
        name = query.question[0].name
    except Exception:
        return None
    if name.is_subdomain(GARBAGE):
        return garbage(wire)
    if name.is_subdomain(MALFORMED):
        return malformed(query)
    if name.is_subdomain(NOBANNER):
        return nobanner(query)
    return forward_tcp(wire, upstream) if tcp else forward_udp(wire, upstream)


class Udp(socketserver.ThreadingUDPServer):
    daemon_threads = True
    upstream: tuple[str, int]


class Tcp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    upstream: tuple[str, int]


class UdpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        reply = answer(data, self.server.upstream, tcp=False)  # type: ignore[attr-defined]
        if reply is not None:
            sock.sendto(reply, self.client_address)


class TcpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            size = struct.unpack("!H", recv_exact(self.request, 2))[0]
            reply = answer(recv_exact(self.request, size),
                           self.server.upstream, tcp=True)  # type: ignore[attr-defined]
            if reply is not None:
                self.request.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            pass


def dns_front(upstream: tuple[str, int]) -> int:
    for _ in range(20):
        udp = Udp(("127.0.0.1", 0), UdpHandler)
        port = udp.server_address[1]
        try:
            tcp = Tcp(("127.0.0.1", port), TcpHandler)
        except OSError:
            udp.server_close()
            continue
        for server in (udp, tcp):
            server.upstream = upstream
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return port
    raise RuntimeError("no port free for UDP and TCP at once")


def silent(address: str, port: int) -> int:
    """Accept connections and hold them open without a byte: no TLS ServerHello, no banner."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(512)

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            HELD.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return int(listener.getsockname()[1])


def main(argv: list[str]) -> None:
    lab_dns, smtp_port = int(argv[0]), int(argv[1])
    ports: dict[str, Any] = {
        "dns": dns_front(("127.0.0.1", lab_dns)),
        "stalled_tls": silent("127.0.0.1", 0),
        "smtp": [NOBANNER_ADDRESS, silent(NOBANNER_ADDRESS, smtp_port)],
    }
    print(json.dumps(ports), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1:])
