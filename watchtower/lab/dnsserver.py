"""A small authoritative DNS server for the lab (dnspython; UDP and TCP; DNSSEC when signed).

Pure Python so the demo needs nothing from Debian. It answers like an authoritative server does:
AA set, NXDOMAIN/NODATA with the SOA in the authority section, in-zone CNAMEs followed, RRSIGs
when the query sets DO, DS from the parent side of a zone cut, REFUSED for names outside its
zones, truncation over UDP when the answer does not fit, AXFR only for zones a view opens to it.
Zones can be replaced while it runs (fault injection), and each listening address can serve its
own view (a lame or out-of-sync second name server, an open resolver).

`LabSigner` signs lab zones (dnspython `sign_zone`) with one ECDSA P-256 key shared by every
zone: one key instead of one per zone keeps signing 1,000 zones at lab start to seconds, and a
lab needs no key separation.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import dns.dnssec
import dns.dnssectypes
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dns.rdtypes.dnskeybase import Flag

log = logging.getLogger(__name__)

IN = dns.rdataclass.IN
#: Cached wire answers (cleared when full): ~1,000 domains' questions fit many times over.
ANSWER_CACHE_ENTRIES = 200_000


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
    # DS lives on the parent side of a zone cut (RFC 4035 3.1.4.1).
    at_cut = q.rdtype == dns.rdatatype.DS and q.name != dns.name.root
    zone = view.find(q.name.parent() if at_cut else q.name)
    if view.recursion and query.flags & dns.flags.RD:
        resp.flags |= dns.flags.RA  # the open-recursion fault: claims to recurse
        if zone is None:  # "resolved" a name outside its zones: nothing there
            resp.set_rcode(dns.rcode.NXDOMAIN)
            return resp
    if zone is None or zone.origin in view.lame:
        resp.set_rcode(dns.rcode.REFUSED)
        return resp
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


def rdata_text(rd: dns.rdata.Rdata) -> str:
    """An rdata in presentation form (through Rdata.to_text, typed, where the DS and DNSKEY
    overrides of dnspython 2.8 are not)."""
    return rd.to_text()


def rrset_of(name: dns.name.Name, rds: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    """The RRset of `name` holding `rds` (its type, covered type, TTL and records)."""
    rrset = dns.rrset.RRset(name, IN, rds.rdtype, rds.covers)
    rrset.update_ttl(rds.ttl)
    for rd in rds:
        rrset.add(rd)
    return rrset


def _add(section: list[dns.rrset.RRset], name: dns.name.Name, rds: dns.rdataset.Rdataset,
         node: dns.node.Node, dnssec: bool) -> None:
    section.append(rrset_of(name, rds))
    if dnssec:
        sigs = node.get_rdataset(IN, dns.rdatatype.RRSIG, rds.rdtype)
        if sigs is not None:
            section.append(rrset_of(name, sigs))


def _authority_soa(resp: dns.message.Message, zone: dns.zone.Zone, dnssec: bool) -> None:
    node = zone.get_node(zone.origin) if zone.origin is not None else None
    if node is None or zone.origin is None:
        return
    soa = node.get_rdataset(IN, dns.rdatatype.SOA)
    if soa is not None:
        _add(resp.authority, zone.origin, soa, node, dnssec)


def axfr_messages(view: View, query: dns.message.Message) -> list[dns.message.Message]:
    """A zone transfer (RFC 5936 2.2): SOA, every RRset, SOA again; REFUSED unless opened."""
    q = query.question[0]
    zone = view.zones.get(q.name)
    if zone is None or zone.origin not in view.allow_axfr or zone.origin in view.lame:
        resp = dns.message.make_response(query)
        resp.set_rcode(dns.rcode.REFUSED)
        return [resp]
    soa = zone.get_rrset(zone.origin, dns.rdatatype.SOA)
    rrsets = [soa] if soa is not None else []
    for name, rds in zone.iterate_rdatasets():
        if rds.rdtype != dns.rdatatype.SOA:
            rrsets.append(rrset_of(name, rds))
    rrsets += [soa] if soa is not None else []
    out = []
    for start in range(0, len(rrsets), 20):
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA
        resp.answer.extend(rrsets[start:start + 20])
        out.append(resp)
    return out


def _wire(resp: dns.message.Message, limit: int) -> bytes:
    try:
        return resp.to_wire(max_size=limit)
    except dns.exception.TooBig:
        resp.answer.clear()
        resp.authority.clear()
        resp.additional.clear()
        resp.flags |= dns.flags.TC
        return resp.to_wire()


class _Serving(Protocol):
    server_address: Any

    def serve_forever(self, poll_interval: float = ...) -> None: ...
    def shutdown(self) -> None: ...
    def server_close(self) -> None: ...


class _UdpLoop:
    """One thread answering one UDP socket in a plain recvfrom/sendto loop.

    Not socketserver's UDPServer with ThreadingMixIn: that starts a thread per datagram, and the
    lab's DNS then measured ~550 queries/s under a benchmark's replay. An answer never blocks
    (it is computed from memory), so one loop per socket is enough; the lab's TCP side keeps a
    thread per connection because a TCP client can stall.
    """

    def __init__(self, address: tuple[str, int], family: int,
                 respond: Callable[[bytes], list[bytes]]) -> None:
        self.socket = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with contextlib.suppress(OSError):
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.socket.bind(address)
        except OSError:
            self.socket.close()
            raise
        self.socket.settimeout(0.2)
        self.server_address = self.socket.getsockname()
        self._respond = respond
        self._stop = threading.Event()

    def serve_forever(self, poll_interval: float = 0.2) -> None:
        sock = self.socket
        while not self._stop.is_set():
            try:
                data, client = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            try:
                for out in self._respond(data):
                    sock.sendto(out, client)
            except Exception:  # one bad datagram never stops the loop
                log.debug("lab dns: could not answer a datagram", exc_info=True)

    def shutdown(self) -> None:
        self._stop.set()

    def server_close(self) -> None:
        self.socket.close()


class _Tcp(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Tcp6(_Tcp):
    address_family = socket.AF_INET6


class DnsServer:
    """Serves views on (address, port) pairs; `views[address]` picks what each address says."""

    def __init__(self, addresses: list[str], port: int = 0) -> None:
        self.addresses = addresses
        self.port = port
        self.views: dict[str, View] = {a: View() for a in addresses}
        self._servers: list[_Serving] = []
        self._threads: list[threading.Thread] = []
        self._answers: dict[tuple[str, bool, bytes], tuple[object, object, object, bool,
                                                          bytes]] = {}
        self.queries = 0

    def set_zones(self, address: str, zones: list[dns.zone.Zone]) -> None:
        view = self.views[address]
        view.zones = {z.origin: z for z in zones if z.origin is not None}

    def _respond(self, address: str, data: bytes, tcp: bool) -> list[bytes]:
        """The wire answers to one query (empty: say nothing), from the answer cache when the
        same question met the same view before.

        The cache key is the query without its ID; an entry remembers the view's zone, lame
        and AXFR sets it was computed from (the fault switch swaps whole objects, never edits
        them in place), so a swapped view misses and is answered afresh.
        """
        self.queries += 1
        view = self.views[address]
        key = (address, tcp, data[2:])
        hit = self._answers.get(key)
        if (hit is not None and hit[0] is view.zones and hit[1] is view.lame
                and hit[2] is view.allow_axfr and hit[3] == view.recursion):
            return [data[:2] + hit[4]]
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return []
        if query.question and query.question[0].rdtype in (dns.rdatatype.AXFR,
                                                           dns.rdatatype.IXFR):
            if not tcp:
                return []
            return [m.to_wire(max_size=65535) for m in axfr_messages(view, query)]
        limit = 65535 if tcp else 512
        if not tcp and query.edns >= 0:
            limit = max(512, min(query.payload, 4096))
        wire = _wire(answer(view, query), limit)
        if len(self._answers) >= ANSWER_CACHE_ENTRIES:
            self._answers.clear()
        self._answers[key] = (view.zones, view.lame, view.allow_axfr, view.recursion, wire[2:])
        return [wire]

    def _tcp_handler(self, address: str) -> type[socketserver.BaseRequestHandler]:
        server = self

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
                        outs = server._respond(address, data, True)
                        if not outs:
                            return
                        for out in outs:
                            sock.sendall(struct.pack("!H", len(out)) + out)
                except OSError:
                    return

        return TcpHandler

    def start(self) -> None:
        """Bind every address on one port; with port 0, retry until one is free on all of
        them (the OS picks it on the first address; another lab may hold it on the others)."""
        chosen = self.port
        for attempt in range(20):
            try:
                servers = self._bind_all(chosen)
                break
            except OSError:
                if chosen != 0 or attempt == 19:
                    raise
        for address, srv in servers:
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                                 daemon=True, name=f"lab-dns-{address}")
            t.start()
            self._servers.append(srv)
            self._threads.append(t)

    def _bind_all(self, port: int) -> list[tuple[str, _Serving]]:
        bound: list[tuple[str, _Serving]] = []
        try:
            for address in self.addresses:
                v6 = ":" in address
                tcp_cls = _Tcp6 if v6 else _Tcp
                udp = _UdpLoop((address, port), socket.AF_INET6 if v6 else socket.AF_INET,
                               functools.partial(self._respond, address, tcp=False))
                bound.append((address, udp))
                if port == 0:
                    port = udp.server_address[1]
                bound.append((address, tcp_cls((address, port), self._tcp_handler(address))))
        except OSError:
            for _, srv in bound:
                srv.server_close()
            raise
        self.port = port
        return bound

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        self._servers.clear()


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


ZoneFactory = Callable[[], dns.zone.Zone]


class LabSigner:
    """One ECDSA P-256 (algorithm 13) key that signs every lab zone, as a combined KSK/ZSK.

    Kept in `key_path` when given, so a restarted lab keeps its DS records and trust anchor.
    """

    def __init__(self, key_path: Path | None = None) -> None:
        key: ec.EllipticCurvePrivateKey | None = None
        if key_path is not None and key_path.exists():
            loaded = serialization.load_pem_private_key(key_path.read_bytes(), None)
            if isinstance(loaded, ec.EllipticCurvePrivateKey):
                key = loaded
        if key is None:
            key = ec.generate_private_key(ec.SECP256R1())
            if key_path is not None:
                key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
                key_path.chmod(0o600)
        self.key = key
        self.dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY = dns.dnssec.make_dnskey(
            key.public_key(), dns.dnssectypes.Algorithm.ECDSAP256SHA256,
            flags=Flag.ZONE | Flag.SEP)

    def ds(self, zone: str | dns.name.Name) -> str:
        """The SHA-256 DS rdata (presentation form) the parent publishes for `zone`."""
        return rdata_text(dns.dnssec.make_ds(zone, self.dnskey, "SHA256"))

    def sign(self, zone: dns.zone.Zone, *, lifetime: dt.timedelta = dt.timedelta(days=30),
             now: dt.datetime | None = None) -> None:
        """Add DNSKEY, NSEC and RRSIGs to `zone` in place, valid from an hour ago."""
        now = now or dt.datetime.now(dt.UTC)
        with zone.writer() as txn:
            dns.dnssec.sign_zone(zone, txn, keys=[(self.key, self.dnskey)], dnskey_ttl=3600,
                                 inception=now - dt.timedelta(hours=1),
                                 expiration=now + lifetime, deterministic=False)
