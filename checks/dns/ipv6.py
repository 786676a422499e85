"""dns.ipv6: can IPv6-only clients reach the zone's name servers, mail and web hosts?

The hosts come from the fleet: the zone's NS set (from DNS), the MX hosts of every mail domain
at or below the zone, and the web hosts (service base URLs, MTA-STS policy hosts and extra
endpoints) inside the zone. Only AAAA presence is judged, as internet.nl does for ns_aaaa; an
IPv4-mapped AAAA (::ffff:0:0/96) does not count, since it reaches nothing over IPv6.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.dns import DnsError
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import fleet_web_endpoints, in_zone, nameservers, zone_name

MIN_NS_WITH_AAAA = 2


def _aaaa(host: str, ctx: ProbeContext) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": host}
    try:
        entry["aaaa"] = ctx.resolve(host, "AAAA").records
    except DnsError as exc:
        entry["error"] = exc.reason
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
class Ipv6(Check):
    meta = CheckMeta(
        id="dns.ipv6",
        family="dns",
        title="Name servers, mail and web hosts have IPv6 addresses",
        query="AAAA of NS, MX and web hosts",
        verdicts=(
            "warn missing AAAA for any; fail if fewer than 2 NS with AAAA (internet.nl ns_aaaa)"
        ),
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=20,
        standards=("RFC 3901", "internet.nl ns_aaaa", "internet.nl mx_aaaa",
                   "internet.nl web_aaaa"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        zone = zone_name(target)
        _, servers = nameservers(zone, ctx)
        ns = [_aaaa(s["name"], ctx) for s in servers]
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
                    mx.append(_aaaa(host, ctx))
        web = []
        for host, _port in fleet_web_endpoints(ctx):
            if in_zone(host, zone) and host + "." not in seen:
                seen.add(host + ".")
                web.append(_aaaa(host + ".", ctx))
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
        hosts = len(ns) + len(facts.get("mx") or []) + len(facts.get("web") or [])
        return f.verdict(f"all {hosts} hosts ({len(ns)} NS) have IPv6 addresses")
