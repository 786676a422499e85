"""A small authoritative DNS server for the lab (dnspython; UDP and TCP; DNSSEC when signed).

Pure Python so the demo needs nothing from Debian. It answers like an authoritative server does:
AA set, NXDOMAIN/NODATA with the SOA in the authority section, in-zone CNAMEs followed, RRSIGs
when the query sets DO, REFUSED for names outside its zones, truncation over UDP when the answer
does not fit. Zones can be replaced while it runs (fault injection), and each listening address
can serve its own view (a lame or out-of-sync second name server).
"""

from __future__ import annotations

import logging
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

log = logging.getLogger(__name__)

IN = dns.rdataclass.IN


@dataclass
class View:
    """The zones one listening address serves; `lame` zones are answered with REFUSED."""

    zones: dict[dns.name.Name, dns.zone.Zone] = field(default_factory=dict)
    lame: set[dns.name.Name] = field(default_factory=set)
    allow_axfr: set[dns.name.Name] = field(default_factory=set)
    recursion: bool = False

    def find(self, qname: dns.name.Name) -> dns.zone.Zone | None:
        name = qname
        while True:
            zone = self.zones.get(name)
            if zone is not None:
                return zone
            if name == dns.name.root:
                return None
            name = name.parent()


def answer(view: View, query: dns.message.Message) -> dns.message.Message:
    """Build the authoritative response to `query` from `view`."""
    resp = dns.message.make_response(query)
    resp.flags &= ~dns.flags.RA
    if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
        resp.set_rcode(dns.rcode.NOTIMP)
        return resp
    q = query.question[0]
    zone = view.find(q.name)
    if zone is None or zone.origin in view.lame:
        resp.set_rcode(dns.rcode.REFUSED)
        return resp
    if view.recursion and query.flags & dns.flags.RD:
        resp.flags |= dns.flags.RA  # the open-recursion fault: claims to recurse
    resp.flags |= dns.flags.AA
    dnssec = bool(query.ednsflags & dns.flags.DO)
    qname, qtype = q.name, q.rdtype
    for _ in range(8):
        node = zone.get_node(qname)
        if node is None:
            if qname == q.name:
                resp.set_rcode(dns.rcode.NXDOMAIN)
            _authority_soa(resp, zone, dnssec)
            return resp
        rds = node.get_rdataset(IN, qtype)
        if rds is not None:
            _add(resp.answer, qname, rds, node, dnssec)
            return resp
        cname = node.get_rdataset(IN, dns.rdatatype.CNAME)
        if cname is None or qtype == dns.rdatatype.CNAME:
            _authority_soa(resp, zone, dnssec)  # NODATA
            return resp
        _add(resp.answer, qname, cname, node, dnssec)
        target = cname[0].target
        if not target.is_subdomain(zone.origin):
            return resp
        qname = target
    return resp


def _add(section: list[dns.rrset.RRset], name: dns.name.Name, rds: dns.rdataset.Rdataset,
         node: dns.node.Node, dnssec: bool) -> None:
    rrset = dns.rrset.RRset(name, IN, rds.rdtype)
    rrset.update(rds)
    section.append(rrset)
    if dnssec:
        sigs = node.get_rdataset(IN, dns.rdatatype.RRSIG, rds.rdtype)
        if sigs is not None:
            sig_set = dns.rrset.RRset(name, IN, dns.rdatatype.RRSIG, rds.rdtype)
            sig_set.update(sigs)
            section.append(sig_set)


def _authority_soa(resp: dns.message.Message, zone: dns.zone.Zone, dnssec: bool) -> None:
    node = zone.get_node(zone.origin)
    if node is None:
        return
    soa = node.get_rdataset(IN, dns.rdatatype.SOA)
    if soa is not None:
        _add(resp.authority, zone.origin, soa, node, dnssec)


def _wire(resp: dns.message.Message, limit: int) -> bytes:
    try:
        return resp.to_wire(max_size=limit)
    except dns.exception.TooBig:
        resp.answer.clear()
        resp.authority.clear()
        resp.additional.clear()
        resp.flags |= dns.flags.TC
        return resp.to_wire()


class _Udp(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Tcp(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class DnsServer:
    """Serves views on (address, port) pairs; `views[address]` picks what each address says."""

    def __init__(self, addresses: list[str], port: int = 0) -> None:
        self.addresses = addresses
        self.port = port
        self.views: dict[str, View] = {a: View() for a in addresses}
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        self.queries = 0

    def set_zones(self, address: str, zones: list[dns.zone.Zone]) -> None:
        view = self.views[address]
        view.zones = {z.origin: z for z in zones}

    def _handler(self, address: str, tcp: bool) -> type[socketserver.BaseRequestHandler]:
        server = self

        def respond(data: bytes, limit: int) -> bytes | None:
            server.queries += 1
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                return None
            view = server.views[address]
            if query.question and query.question[0].rdtype in (dns.rdatatype.AXFR,
                                                               dns.rdatatype.IXFR):
                return None if not tcp else _axfr_refused(query)
            resp = answer(view, query)
            if not tcp and query.edns >= 0:
                limit = max(512, min(query.payload, 4096))
            return _wire(resp, limit)

        class UdpHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                out = respond(data, 512)
                if out is not None:
                    sock.sendto(out, self.client_address)

        class TcpHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(5)
                try:
                    while True:
                        head = _recv_exact(sock, 2)
                        if head is None:
                            return
                        data = _recv_exact(sock, struct.unpack("!H", head)[0])
                        if data is None:
                            return
                        out = respond(data, 65535)
                        if out is None:
                            return
                        sock.sendall(struct.pack("!H", len(out)) + out)
                except OSError:
                    return

        return TcpHandler if tcp else UdpHandler

    def start(self) -> None:
        for address in self.addresses:
            udp = _Udp((address, self.port), self._handler(address, False))
            if self.port == 0:
                self.port = udp.server_address[1]
            tcp = _Tcp((address, self.port), self._handler(address, True))
            for srv in (udp, tcp):
                t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                                     daemon=True, name=f"lab-dns-{address}")
                t.start()
                self._servers.append(srv)
                self._threads.append(t)

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        self._servers.clear()


def _axfr_refused(query: dns.message.Message) -> bytes:
    resp = dns.message.make_response(query)
    resp.set_rcode(dns.rcode.REFUSED)
    return resp.to_wire()


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


ZoneFactory = Callable[[], dns.zone.Zone]
