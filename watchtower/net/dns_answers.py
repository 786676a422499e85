"""The DNS client's values: a server address, its error, and the answers checks judge.

Apart from the resolver (`watchtower.net.dns`) so that a check, a fixture or the lab can build
and read answers without the client's sockets and caches.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdatatype
import dns.rrset

from watchtower.errors import ProbeError


@dataclass(frozen=True, slots=True)
class Server:
    """A nameserver address with its port (the lab and tests use high loopback ports)."""

    host: str
    port: int = 53

    @classmethod
    def parse(cls, text: str, default_port: int = 53) -> Server:
        """Parse `host`, `host:port`, `[v6]:port` or a bare IPv6 address."""
        text = text.strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else default_port
            return cls(host, port)
        if text.count(":") == 1:
            host, port_text = text.split(":")
            return cls(host, int(port_text))
        return cls(text, default_port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class DnsError(ProbeError):
    """A question got no usable answer: timeout, SERVFAIL, REFUSED or a malformed reply."""

    def __init__(self, reason: str, *, kind: str = "dns") -> None:
        super().__init__(reason, kind=kind)


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """What the resolver said about (name, type); NXDOMAIN and NODATA are answers, not errors."""

    name: str
    rdtype: str
    rcode: str
    rrset: dns.rrset.RRset | None = field(default=None, compare=False)
    authenticated: bool = False
    cname_chain: tuple[str, ...] = ()
    rrsigs: dns.rrset.RRset | None = field(default=None, compare=False)

    @property
    def nxdomain(self) -> bool:
        return self.rcode == "NXDOMAIN"

    @property
    def records(self) -> list[str]:
        """Records in presentation format, sorted so evidence is stable across sweeps."""
        if self.rrset is None:
            return []
        return sorted(rd.to_text() for rd in self.rrset)

    @property
    def rdatas(self) -> list[Any]:
        return list(self.rrset) if self.rrset is not None else []

    @property
    def ttl(self) -> int | None:
        return self.rrset.ttl if self.rrset is not None else None

    @property
    def texts(self) -> list[str]:
        """TXT/SPF records with their strings joined (RFC 7208 3.3), undecodable bytes replaced."""
        out = []
        for rd in self.rdatas:
            strings = getattr(rd, "strings", None)
            if strings is not None:
                out.append(b"".join(strings).decode("utf-8", errors="replace"))
        return sorted(out)

    def evidence(self) -> dict[str, Any]:
        ev: dict[str, Any] = {"name": self.name, "type": self.rdtype, "rcode": self.rcode,
                              "records": self.records}
        if self.cname_chain:
            ev["cname_chain"] = list(self.cname_chain)
        if self.authenticated:
            ev["ad"] = True
        return ev


@dataclass(frozen=True, slots=True)
class ServerReply:
    """One server's raw reply to one question, reduced to the facts the DNS checks judge."""

    server: str
    rcode: str
    aa: bool
    ra: bool
    answer: tuple[dns.rrset.RRset, ...] = field(compare=False)
    authority: tuple[dns.rrset.RRset, ...] = field(compare=False)
    additional: tuple[dns.rrset.RRset, ...] = field(compare=False, default=())

    def rrset(self, rdtype: str, name: str | None = None) -> dns.rrset.RRset | None:
        want = dns.rdatatype.from_text(rdtype)
        for rrset in self.answer:
            if rrset.rdtype == want and (name is None or rrset.name == dns.name.from_text(name)):
                return rrset
        return None

    def rrsigs(self, covered: str, name: str | None = None) -> dns.rrset.RRset | None:
        """The RRSIG set covering `covered` in the answer section (asked with `dnssec=True`)."""
        want = dns.rdatatype.from_text(covered)
        for rrset in self.answer:
            if (rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers == want
                    and (name is None or rrset.name == dns.name.from_text(name))):
                return rrset
        return None

    def evidence(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "rcode": self.rcode,
            "aa": self.aa,
            "ra": self.ra,
            "answer": [rr.to_text() for rr in self.answer],
        }


def _is_ip(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            continue
    return False


def is_ip(host: str) -> bool:
    """True for an IPv4 or IPv6 literal."""
    return _is_ip(host)
