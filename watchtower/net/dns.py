"""DNS through dnspython, with configurable `host:port` servers and a per-sweep cache.

Two kinds of question:
- `resolve(name, type)`: what the fleet's configured resolver answers (stub behaviour: RD set, UDP
  with TCP fallback on truncation, next server on timeout/SERVFAIL, CNAME chains followed).
- `ask(server, name, type)`: what one particular server answers (authoritative checks: AA flag,
  SOA serials, open recursion, lame delegation).

Both are cached for the life of a `Resolver` (one sweep), including failures, so every check of a
sweep that asks the same question costs the network one query, and a dead server costs one
timeout per question, not one per check. Concurrent askers of the same question wait for the
first one instead of sending their own (in-flight de-duplication).
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.xfr
import dns.zone

from watchtower.errors import ProbeTimeout
from watchtower.net.deadline import remaining
from watchtower.net.dns_answers import DnsAnswer, DnsError, Server, ServerReply, _is_ip, is_ip
from watchtower.net.dns_wire import Question
from watchtower.net.shared import SharedCalls
from watchtower.net.trust_anchors import ROOT_ANCHOR, load_trust_anchors

#: The client's public face: its values and the trust anchors are kept apart
#: (`dns_answers.py`, `trust_anchors.py`) and named here too, where callers look for them.
__all__ = ["CACHE_ENTRIES", "MAX_CNAME_HOPS", "ROOT_ANCHOR", "DnsAnswer", "DnsError", "Resolver",
           "Server", "ServerReply", "is_ip", "load_trust_anchors"]

T = TypeVar("T")

MAX_CNAME_HOPS = 8
#: Answers a sweep's resolver keeps (least recently used go first). Jobs run grouped by domain,
#: so a domain's questions are asked close together; the bound keeps a 1,000-domain sweep's
#: memory flat while names every domain asks about (a provider's SPF include) stay hot.
CACHE_ENTRIES = 8_000

class Resolver:
    """The sweep's DNS client. Create one per sweep; it is safe to share between threads."""

    def __init__(
        self,
        nameservers: list[Server],
        timeout: float = 3.0,
        *,
        authoritative_port: int = 53,
        cache: bool = True,
    ) -> None:
        if not nameservers:
            raise ValueError("at least one nameserver is needed")
        self.nameservers = nameservers
        self.timeout = timeout
        self.authoritative_port = authoritative_port
        self._cache = SharedCalls(max_entries=CACHE_ENTRIES) if cache else None
        self.queries_sent = 0
        self._count_lock = threading.Lock()
        self._local = threading.local()
        self._sockets: list[socket.socket] = []
        self._sockets_lock = threading.Lock()

    def close(self) -> None:
        """Close the probe threads' UDP sockets (the sweep is over)."""
        with self._sockets_lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    # -- public API ---------------------------------------------------------------------------

    @property
    def cache_stats(self) -> dict[str, int]:
        if self._cache is None:
            return {"hits": 0, "misses": 0, "sent": self.queries_sent}
        return {"hits": self._cache.hits, "misses": self._cache.misses, "sent": self.queries_sent}

    def resolve(
        self, name: str, rdtype: str, *, dnssec: bool = False, unchecked: bool = False,
        deadline: float | None = None,
    ) -> DnsAnswer:
        """Ask the configured resolver; follow CNAMEs; NXDOMAIN/NODATA come back as answers.

        `unchecked` sets CD (RFC 4035 3.2.2): a validating resolver then hands over data it
        would refuse as bogus (SERVFAIL). For checks that validate for themselves or judge the
        authoritative servers, never for checks that rely on the AD bit (mail.dane).
        """
        key = ("resolve", _norm(name), rdtype.upper(), dnssec, unchecked)
        return self._cached(
            key, lambda: self._resolve(name, rdtype.upper(), dnssec, unchecked, deadline)
        )

    def ask(
        self,
        server: Server | str,
        name: str,
        rdtype: str,
        *,
        recursion: bool = False,
        dnssec: bool = False,
        deadline: float | None = None,
    ) -> ServerReply:
        """Ask one server directly (no RD unless `recursion`), for authoritative checks."""
        srv = self._server(server)
        key = ("ask", str(srv), _norm(name), rdtype.upper(), recursion, dnssec)
        return self._cached(
            key, lambda: self._ask(srv, name, rdtype.upper(), recursion, dnssec, deadline)
        )

    def axfr(self, server: Server | str, zone: str, *, deadline: float | None = None) -> int:
        """Try a zone transfer; returns the number of records received (0 when refused)."""
        srv = self._server(server)
        return int(self._cached(("axfr", str(srv), _norm(zone)), lambda: self._axfr(srv, zone,
                                                                                   deadline)))

    def addresses(
        self, host: str, *, unchecked: bool = False, deadline: float | None = None
    ) -> list[str]:
        """A and AAAA of a host name through the configured resolver (IP literals pass through)."""
        if _is_ip(host):
            return [host]
        out: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                out.extend(self.resolve(host, rdtype, unchecked=unchecked,
                                        deadline=deadline).records)
            except DnsError:
                if rdtype == "A":
                    raise
        return out

    def zone_apex_above(self, name: str, *, deadline: float | None = None) -> str:
        """The closest enclosing zone apex strictly above `name` (its parent zone).

        Walks up one label at a time asking the resolver for SOA: only a zone apex owns an SOA
        (a name inside a zone gets NODATA), so the first ancestor with an SOA of its own is the
        parent zone. The root is the answer when nothing below it is a zone.
        """
        current = dns.name.from_text(_norm(name))
        while current != dns.name.root:
            current = current.parent()
            if current == dns.name.root:
                break
            answer = self.resolve(current.to_text(), "SOA", deadline=deadline)
            if answer.rrset is not None and not answer.cname_chain:
                return current.to_text()
        return "."

    # -- internals ---------------------------------------------------------------------------

    def _server(self, server: Server | str) -> Server:
        if isinstance(server, Server):
            return server
        return Server.parse(server, self.authoritative_port)

    def _cached(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        if self._cache is None:
            return compute()
        return self._cache.get(key, compute)

    def _count(self) -> None:
        with self._count_lock:
            self.queries_sent += 1

    def _exchange(
        self, srv: Server, question: Question, deadline: float | None
    ) -> dns.message.Message:
        """UDP first, TCP when the reply is truncated; raises DnsError with a reason."""
        timeout = remaining(deadline, self.timeout)
        self._count()
        qid = self._query_id()
        try:
            reply = self._udp(question, qid, srv, timeout)
            if reply.flags & dns.flags.TC:
                self._count()
                reply = dns.query.tcp(question.message(qid), srv.host, port=srv.port,
                                      timeout=remaining(deadline, self.timeout))
        except dns.exception.Timeout as exc:
            raise DnsError(f"no answer from {srv} within {timeout:.1f}s", kind="timeout") from exc
        except ProbeTimeout:
            raise
        except dns.exception.DNSException as exc:
            raise DnsError(f"malformed answer from {srv}: {exc}", kind="malformed") from exc
        except (OSError, EOFError) as exc:
            raise DnsError(f"cannot reach {srv}: {exc}", kind="unreachable") from exc
        return reply

    def _query_id(self) -> int:
        """A random 16-bit query ID from a per-thread buffer of os.urandom bytes: dnspython's
        default asks the OS for every ID (7 % of a DNS-heavy sweep in py-spy)."""
        local = self._local
        buf: bytes = getattr(local, "ids", b"")
        pos: int = getattr(local, "pos", 0)
        if pos + 2 > len(buf):
            buf, pos = os.urandom(1024), 0
            local.ids = buf
        local.pos = pos + 2
        return int.from_bytes(buf[pos:pos + 2], "big")

    def _udp(self, question: Question, qid: int, srv: Server, timeout: float
             ) -> dns.message.Message:
        """One UDP exchange on this thread's socket for the server's address family.

        Plain blocking I/O with a timeout on a socket the thread keeps: dnspython's `udp()`
        makes a socket and an epoll set per question, which showed in a sweep's profile. A
        datagram from another address, or one that is not the answer to this question (a
        late answer to an abandoned one, a spoofing attempt), is ignored, as a stub resolver
        does (RFC 5452 9.1); a malformed answer from the server is an error. A failure drops
        the socket, so the next question gets a fresh random port.
        """
        family = socket.AF_INET6 if ":" in srv.host else socket.AF_INET
        sockets: dict[int, socket.socket] = getattr(self._local, "sockets", None) or {}
        self._local.sockets = sockets
        sock = sockets.get(family)
        if sock is None or sock.fileno() < 0:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sockets[family] = sock
            with self._sockets_lock:
                self._sockets.append(sock)
        try:
            destination = _udp_destination(srv.host, srv.port, family)
            expires = time.monotonic() + timeout
            sock.settimeout(timeout)
            sock.sendto(question.wire(qid), destination)
            while True:
                left = expires - time.monotonic()
                if left <= 0:
                    raise dns.exception.Timeout(timeout=timeout)
                sock.settimeout(left)
                try:
                    data, source = sock.recvfrom(65535)
                except TimeoutError:
                    raise dns.exception.Timeout(timeout=timeout) from None
                if source[:2] != destination[:2]:
                    continue
                reply = dns.message.from_wire(data, ignore_trailing=False)
                if question.answered_by(qid, reply):
                    return reply
        except BaseException:
            sockets.pop(family, None)
            with self._sockets_lock:
                if sock in self._sockets:
                    self._sockets.remove(sock)
            sock.close()
            raise

    def _resolve(
        self, name: str, rdtype: str, dnssec: bool, unchecked: bool, deadline: float | None
    ) -> DnsAnswer:
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            raise DnsError(f"invalid name {name!r}: {exc}", kind="input") from exc
        chain: list[str] = []
        seen: set[dns.name.Name] = set()
        wanted = dns.rdatatype.from_text(rdtype)
        while True:
            reply = self._ask_resolvers(qname, wanted, dnssec, unchecked, deadline)
            rcode = dns.rcode.to_text(reply.rcode())
            ad = bool(reply.flags & dns.flags.AD)
            target = qname
            # Follow the CNAME chain inside the answer section first.
            for _ in range(MAX_CNAME_HOPS + 1):
                final = reply.get_rrset(reply.answer, target, dns.rdataclass.IN, wanted)
                if final is not None:
                    sigs = reply.get_rrset(reply.answer, target, dns.rdataclass.IN,
                                           dns.rdatatype.RRSIG, wanted)
                    return DnsAnswer(name, rdtype, rcode, final, ad, tuple(chain), sigs)
                cname = reply.get_rrset(reply.answer, target, dns.rdataclass.IN,
                                        dns.rdatatype.CNAME)
                if cname is None or wanted == dns.rdatatype.CNAME:
                    break
                if target in seen:
                    raise DnsError(f"CNAME loop at {target}", kind="cname-loop")
                seen.add(target)
                target = cname[0].target
                chain.append(target.to_text())
            if target != qname and rcode == "NOERROR" and not _has_type(reply, target, wanted):
                # The server stopped at a CNAME it is not authoritative for: chase it ourselves.
                if len(chain) > MAX_CNAME_HOPS:
                    raise DnsError(f"CNAME chain longer than {MAX_CNAME_HOPS}", kind="cname-loop")
                qname = target
                continue
            return DnsAnswer(name, rdtype, rcode, None, ad, tuple(chain))

    def _ask_resolvers(
        self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, dnssec: bool,
        unchecked: bool, deadline: float | None,
    ) -> dns.message.Message:
        flags = dns.flags.AD | dns.flags.RD | (dns.flags.CD if unchecked else 0)
        question = Question.make(qname, rdtype, flags=flags, dnssec=dnssec)
        problems: list[str] = []
        for srv in self.nameservers:
            try:
                reply = self._exchange(srv, question, deadline)
            except DnsError as exc:
                problems.append(exc.reason)
                continue
            rcode = reply.rcode()
            if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                return reply
            problems.append(f"{dns.rcode.to_text(rcode)} from {srv}")
        kind = "timeout" if all("no answer" in p for p in problems) else "servfail"
        raise DnsError(f"{qname} {dns.rdatatype.to_text(rdtype)}: " + "; ".join(problems),
                       kind=kind)

    def _ask(
        self, srv: Server, name: str, rdtype: str, recursion: bool, dnssec: bool,
        deadline: float | None,
    ) -> ServerReply:
        try:
            question = Question.make(name, rdtype, flags=dns.flags.RD if recursion else 0,
                                     dnssec=dnssec)
        except dns.exception.DNSException as exc:
            raise DnsError(f"invalid question {name} {rdtype}: {exc}", kind="input") from exc
        reply = self._exchange(srv, question, deadline)
        return ServerReply(
            server=str(srv),
            rcode=dns.rcode.to_text(reply.rcode()),
            aa=bool(reply.flags & dns.flags.AA),
            ra=bool(reply.flags & dns.flags.RA),
            answer=tuple(reply.answer),
            authority=tuple(reply.authority),
            additional=tuple(reply.additional),
        )

    def _axfr(self, srv: Server, zone: str, deadline: float | None) -> int:
        self._count()
        try:
            z = dns.zone.Zone(zone)
            dns.query.inbound_xfr(srv.host, z, port=srv.port,
                                  timeout=remaining(deadline, self.timeout),
                                  lifetime=remaining(deadline, self.timeout * 2))
        except dns.xfr.TransferError:
            return 0  # refused or NOTAUTH: the answer we hope for
        except dns.exception.FormError:
            return 0
        except dns.exception.Timeout as exc:
            raise DnsError(f"AXFR from {srv} timed out", kind="timeout") from exc
        except (ConnectionError, EOFError):
            return 0  # the server closed the TCP connection: a refusal too
        except dns.exception.DNSException as exc:
            raise DnsError(f"AXFR from {srv}: {exc}", kind="malformed") from exc
        except OSError as exc:
            raise DnsError(f"AXFR from {srv}: {exc}", kind="unreachable") from exc
        return sum(len(rds) for _, rds in z.iterate_rdatasets())


@functools.lru_cache(maxsize=256)
def _udp_destination(host: str, port: int, family: int) -> Any:
    """The socket address of a nameserver (an IP literal; no lookup), made once per server
    rather than per question."""
    return socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM, 0,
                              socket.AI_NUMERICHOST)[0][4]


def _norm(name: str) -> str:
    return name.lower().rstrip(".") + "."


def _has_type(reply: dns.message.Message, name: dns.name.Name, rdtype: int) -> bool:
    return any(rr.name == name and rr.rdtype == rdtype for rr in reply.answer)
