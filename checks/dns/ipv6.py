"""dns.ipv6: can IPv6-only clients reach the zone's name servers, mail and web hosts?

The hosts come from the fleet: the zone's NS set (from DNS), the MX hosts of every mail domain
at or below the zone, and the web hosts (service base URLs, MTA-STS policy hosts and extra
endpoints) inside the zone. An IPv4-mapped AAAA (::ffff:0:0/96) does not count, since it
reaches nothing over IPv6. Reachability is a TCP connect to each IPv6 address (at most
`MAX_REACH_PER_HOST` per host) on the service's port: DNS for a name server, SMTP for an MX,
HTTPS for a web host, as internet.nl's ns_reach, mx_reach and web_reach tests connect.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from watchtower.compliance.criteria import Criterion, not_tested
from watchtower.compliance.frameworks import InStatus
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.dns import DnsError
from watchtower.net.reach import tcp_connect
from watchtower.probe.api import CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from ..graded import GradedCheck
from .common import fleet_web_endpoints, in_zone, nameservers, zone_name

MIN_NS_WITH_AAAA = 2
MAX_REACH_PER_HOST = 2


def _aaaa(host: str, ctx: ProbeContext, port: int) -> dict[str, Any]:
    """The host's AAAA records and, per usable IPv6 address, whether `port` answers."""
    entry: dict[str, Any] = {"name": host, "port": port}
    try:
        entry["aaaa"] = ctx.resolve(host, "AAAA").records
    except DnsError as exc:
        entry["error"] = exc.reason
        return entry
    entry["reach"] = {a: tcp_connect(a, port, deadline=ctx.deadline) or "ok"
                      for a in _usable_v6(entry["aaaa"])[:MAX_REACH_PER_HOST]}
    return entry


def _usable_v6(addresses: list[str]) -> list[str]:
    out = []
    for a in addresses:
        try:
            ip = ipaddress.IPv6Address(a)
        except ValueError:
            continue
        if ip.ipv4_mapped is None:
            out.append(a)
    return out


@register
class Ipv6(GradedCheck):
    meta = CheckMeta(
        id="dns.ipv6",
        needs=("dns.ns.authoritative",),
        family="dns",
        title="Name servers, mail and web hosts have IPv6 addresses",
        query=(
            "AAAA of NS, MX and web hosts, then a TCP connect to each IPv6 address on the "
            "service's port (DNS, SMTP, HTTPS)"
        ),
        verdicts=(
            "warn missing AAAA for any; fail if fewer than 2 NS with AAAA (internet.nl ns_aaaa); "
            "fail an IPv6 address that does not answer (ns_reach, mx_reach, web_reach)"
        ),
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=30,
        standards=("RFC 3901", "internet.nl ns_aaaa", "internet.nl ns_reach",
                   "internet.nl mx_aaaa", "internet.nl mx_reach", "internet.nl web_aaaa",
                   "internet.nl web_reach"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        zone = zone_name(target)
        _, servers = nameservers(zone, ctx)
        settings = ctx.fleet.probe
        ns = [_aaaa(s["name"], ctx, settings.authoritative_port) for s in servers]
        mx: list[dict[str, Any]] = []
        seen: set[str] = set()
        for domain in ctx.fleet.mail_domains:
            if not in_zone(domain.name, zone) or not domain.sending:
                continue
            try:
                answer = ctx.resolve(domain.name, "MX")
            except DnsError as exc:
                mx.append({"name": f"MX of {domain.name}", "error": exc.reason})
                continue
            for rd in answer.rdatas:
                host = rd.exchange.to_text()
                if host != "." and host not in seen:  # "." is a null MX (RFC 7505)
                    seen.add(host)
                    mx.append(_aaaa(host, ctx, settings.smtp_port))
        web = []
        for host, port in fleet_web_endpoints(ctx):
            if in_zone(host, zone) and host + "." not in seen:
                seen.add(host + ".")
                web.append(_aaaa(host + ".", ctx, port))
        return {"zone": zone, "ns": ns, "mx": mx, "web": web}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        ns = facts.get("ns") or []
        if not ns:
            f.error("the zone has no NS records to look at")
            return f.verdict("")
        with_v6 = [s for s in ns if _usable_v6(s.get("aaaa") or [])]
        if len(with_v6) < MIN_NS_WITH_AAAA:
            f.fail(f"{len(with_v6)} of {len(ns)} name servers have an IPv6 address; at least "
                   f"{MIN_NS_WITH_AAAA} are needed for IPv6-only resolvers")
        for role, entries in (("name server", ns), ("mail host", facts.get("mx") or []),
                              ("web host", facts.get("web") or [])):
            for e in entries:
                if e.get("error"):
                    f.error(f"{role} {e['name']}: AAAA lookup failed ({e['error']})")
                elif not e.get("aaaa"):
                    f.warn(f"{role} {e['name']} has no AAAA record")
                elif not _usable_v6(e["aaaa"]):
                    f.warn(f"{role} {e['name']} has only IPv4-mapped AAAA "
                           f"({', '.join(e['aaaa'])})")
                for address, why in _unreached(e):
                    f.fail(f"{role} {e['name']}: [{address}]:{e.get('port')} does not answer "
                           f"over IPv6 ({why})")
        hosts = len(ns) + len(facts.get("mx") or []) + len(facts.get("web") or [])
        return f.verdict(f"all {hosts} hosts ({len(ns)} NS) have IPv6 addresses that answer")

    def criteria(self, facts: Facts) -> list[Criterion]:
        return ipv6_criteria(facts)


def _unreached(entry: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a, why) for a, why in (entry.get("reach") or {}).items() if why != "ok"]


def ipv6_criteria(facts: Facts) -> list[Criterion]:
    """internet.nl's IPv6 tests: addresses (ns_aaaa needs two name servers) and reachability
    of every address found, for name servers, mail hosts and web hosts."""
    out = []
    for role, key in (("ns", "ns"), ("mx", "mx"), ("web", "web")):
        entries = facts.get(key) or []
        if not entries:
            out += [not_tested(f"{role}_aaaa", f"no {role} host"),
                    not_tested(f"{role}_reach", f"no {role} host")]
            continue
        with_v6 = [e["name"] for e in entries if _usable_v6(e.get("aaaa") or [])]
        need = MIN_NS_WITH_AAAA if role == "ns" else len(entries)
        missing = [e["name"] for e in entries if e["name"] not in with_v6]
        out.append(Criterion(f"{role}_aaaa", None,
                             InStatus.PASSED if len(with_v6) >= need else InStatus.FAILED,
                             f"{len(with_v6)} of {len(entries)} have an IPv6 address"
                             + (f" (none: {', '.join(missing[:5])})" if missing else "")))
        tried = [e for e in entries if e.get("reach")]
        bad = [f"{e['name']} [{a}]: {why}" for e in tried for a, why in _unreached(e)]
        if not tried:
            out.append(not_tested(f"{role}_reach", "no IPv6 address to connect to"))
        else:
            out.append(Criterion(f"{role}_reach", None,
                                 InStatus.FAILED if bad else InStatus.PASSED,
                                 "; ".join(bad[:5]) if bad else
                                 f"every IPv6 address of {len(tried)} host(s) answers"))
    return out
