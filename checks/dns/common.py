"""What every dns.* check needs: the zone's name servers and one question put to each of them.

The checks that judge name servers one by one (authority, consistency, recursion, AXFR, RRSIG
expiry) all start from the same facts: the NS set the fleet's resolver returns and the addresses
of each NS. Gathering them here, through the sweep's shared `Resolver`, means that a sweep of
eleven checks over one zone asks for its NS set once, and every per-server question (SOA with DO
set, asked by four checks) goes out once per address.

Facts are plain JSON (strings, ints, lists) so judgements are tested from recorded fixtures and
the facts are the evidence a report shows: the exact records and responses seen.
"""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.name
import dns.rrset

from watchtower.errors import ProbeError
from watchtower.model import Target
from watchtower.net.dns import DnsError, ServerReply
from watchtower.probe.api import ProbeContext

JsonDict = dict[str, Any]


def zone_name(target: Target) -> str:
    """The zone as an absolute ASCII name (IDNA for non-ASCII names), or a ProbeError."""
    try:
        return dns.name.from_text(target.name.rstrip(".") + ".").to_text()
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise ProbeError(f"invalid zone name {target.name!r}: {exc}", kind="input") from exc


def nameservers(zone: str, ctx: ProbeContext) -> tuple[str, list[JsonDict]]:
    """(rcode, [{"name", "addresses", "problem"}]) for the zone's NS set, sorted by name.

    A failed NS lookup (timeout, SERVFAIL) raises: without the NS set nothing can be judged. A
    failed address lookup of one NS is recorded as that server's `problem`. Both are asked with
    CD set: these checks judge what the servers serve (and dns.dnssec.* validates by itself),
    so a validating resolver must not hide a bogus zone's servers behind SERVFAIL.
    """
    answer = ctx.dns.resolve(zone, "NS", unchecked=True, deadline=ctx.deadline)
    servers = []
    for rd in answer.rdatas:
        name = rd.target.to_text()
        try:
            addresses = ctx.dns.addresses(name, unchecked=True, deadline=ctx.deadline)
            problem = None
        except DnsError as exc:
            addresses, problem = [], exc.reason
        servers.append({"name": name, "addresses": sorted(set(addresses)), "problem": problem})
    return answer.rcode, sorted(servers, key=lambda s: str(s["name"]))


def server_pairs(servers: list[JsonDict]) -> list[tuple[str, str]]:
    """(NS name, address) for every address of every NS, each address once."""
    seen: set[str] = set()
    out = []
    for s in servers:
        for address in s["addresses"]:
            if address not in seen:
                seen.add(address)
                out.append((s["name"], address))
    return out


def ask_each(
    ctx: ProbeContext, pairs: list[tuple[str, str]], qname: str, qtype: str, *,
    dnssec: bool = True, recursion: bool = False,
) -> list[tuple[str, str, ServerReply | None, DnsError | None]]:
    """Put one question to every (NS, address); a server's failure is kept, not raised.

    `dnssec=True` by default so the SOA asked by the authority, consistency and expiry checks is
    one cached question per address, not three.
    """
    out: list[tuple[str, str, ServerReply | None, DnsError | None]] = []
    for ns, address in pairs:
        try:
            reply = ctx.dns.ask(address, qname, qtype, recursion=recursion, dnssec=dnssec,
                                deadline=ctx.deadline)
            out.append((ns, address, reply, None))
        except DnsError as exc:
            out.append((ns, address, None, exc))
    return out


def first_reply(
    ctx: ProbeContext, pairs: list[tuple[str, str]], qname: str, qtype: str, *,
    dnssec: bool = True,
) -> tuple[ServerReply | None, list[str]]:
    """The first authoritative NOERROR/NXDOMAIN reply from the zone's servers, and the problems
    met on the way (a dead first server must not hide the answer of the second)."""
    problems: list[str] = []
    for ns, address in pairs:
        try:
            reply = ctx.dns.ask(address, qname, qtype, dnssec=dnssec, deadline=ctx.deadline)
        except DnsError as exc:
            problems.append(f"{ns} ({address}): {exc.reason}")
            continue
        if reply.rcode in ("NOERROR", "NXDOMAIN") and reply.aa:
            return reply, problems
        problems.append(f"{ns} ({address}): {reply.rcode}{'' if reply.aa else ' without AA'}")
    return None, problems


def rrset_facts(rrset: dns.rrset.RRset | None) -> JsonDict | None:
    """An RRset as JSON: owner, TTL, type (RRSIG sets: the covered type too), rdata texts."""
    if rrset is None:
        return None
    out: JsonDict = {"name": rrset.name.to_text(), "ttl": rrset.ttl,
                     "type": dns.rdatatype.to_text(rrset.rdtype),
                     "rdatas": sorted(rd.to_text() for rd in rrset)}
    if rrset.covers:
        out["covers"] = dns.rdatatype.to_text(rrset.covers)
    return out


def rrset_from_facts(facts: JsonDict | None) -> dns.rrset.RRset | None:
    """The inverse of `rrset_facts`; None for absent or unreadable data (judge never raises)."""
    if not facts:
        return None
    try:
        return dns.rrset.from_text_list(facts["name"], int(facts["ttl"]), "IN", facts["type"],
                                        list(facts["rdatas"]))
    except (dns.exception.DNSException, KeyError, ValueError, TypeError):
        return None


def where(entry: JsonDict) -> str:
    """How a finding names a server: `ns1.example.test. (192.0.2.1)`."""
    return f"{entry.get('ns')} ({entry.get('address')})"


_endpoint_cache: dict[int, tuple[Any, list[tuple[str, int]]]] = {}


def fleet_web_endpoints(ctx: ProbeContext) -> list[tuple[str, int]]:
    """(host, port) of every HTTPS endpoint the fleet derives (services, MTA-STS hosts, extra
    endpoints), computed once per fleet object: a 1,000-zone sweep asks for it 2,000 times."""
    from urllib.parse import urlsplit

    from watchtower.model import TargetKind

    fleet = ctx.fleet
    cached = _endpoint_cache.get(id(fleet))
    if cached is not None and cached[0] is fleet:
        return cached[1]
    out: list[tuple[str, int]] = []
    for t in fleet.targets():
        if t.kind is TargetKind.ENDPOINT:
            parts = urlsplit(t.spec.url)
            if parts.hostname:
                out.append((parts.hostname.lower().rstrip("."), parts.port or 443))
    if len(_endpoint_cache) > 8:
        _endpoint_cache.clear()
    _endpoint_cache[id(fleet)] = (fleet, out)
    return out


def in_zone(host: str, zone: str) -> bool:
    """Whether `host` is the zone apex or below it (zone given absolute, host either way)."""
    h = host.lower().rstrip(".")
    z = zone.lower().rstrip(".")
    return h == z or h.endswith("." + z)
