"""mail.fcrdns and mail.dnsbl: what receivers look up about an MX's addresses.

Both ask through the appliance's own resolver (`ctx.resolve`), never a public one: DNSBL
operators refuse queries from big public resolvers and answer them with 127.255.255.x codes,
which must read as "the probe could not run", not as a listing (RFC 5782 2.1, Spamhaus
return codes).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import dns.reversename

from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import mx_facts, null_mx, smtp_endpoints, spec_of

LISTING_NET = ipaddress.ip_network("127.0.0.0/8")
ERROR_NET = ipaddress.ip_network("127.255.255.0/24")


def reverse_name(address: str) -> str:
    """`4.3.2.1.in-addr.arpa.` / nibble form for IPv6 (RFC 1035 3.5, RFC 3596 2.5)."""
    return dns.reversename.from_address(address).to_text()


def dnsbl_name(address: str, zone: str) -> str:
    """The DNSBL query name: reversed octets (or nibbles) under the list's zone (RFC 5782 2.1,
    2.4)."""
    rev = reverse_name(address)
    suffix = ".in-addr.arpa." if ":" not in address else ".ip6.arpa."
    return rev[: -len(suffix)] + "." + zone.rstrip(".") + "."


@register
class Fcrdns(Check):
    meta = CheckMeta(
        id="mail.fcrdns",
        needs=("dns.ns.authoritative",),
        family="mail",
        title="Every MX address has a PTR whose name resolves back to it",
        query="PTR of each MX address, then A/AAAA of the PTR name",
        verdicts="warn missing PTR or no round trip",
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=86400,
        timeout=20,
        standards=("RFC 8601 2.7.3", "RFC 1912 2.1", "M3AAWG outbound BCP"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        mx = mx_facts(ctx, target.name)
        checked: list[dict[str, Any]] = []
        for host, address in smtp_endpoints(mx):
            item: dict[str, Any] = {"mx": host, "address": address, "ptr": [], "forward": {}}
            try:
                answer = ctx.resolve(reverse_name(address), "PTR")
                item["rcode"] = answer.rcode
                item["ptr"] = [r.rstrip(".").lower() for r in answer.records]
                for name in item["ptr"][:4]:
                    item["forward"][name] = ctx.dns.addresses(name, deadline=ctx.deadline)
            except ProbeError as exc:
                item["error"] = exc.reason
            checked.append(item)
        return {"domain": target.name, "null_mx": null_mx(mx), "addresses": checked}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        if not facts["addresses"]:
            return f.verdict("null MX: no address to check" if facts.get("null_mx")
                             else "no MX address (see mail.mx)")
        shown = []
        for item in facts["addresses"]:
            who = f"{item['mx']} ({item['address']})"
            if item.get("error"):
                f.error(f"{who}: {item['error']}")
                continue
            if not item["ptr"]:
                f.warn(f"{who}: no PTR record for {item['address']}")
                continue
            back = [n for n, addrs in item["forward"].items() if item["address"] in addrs]
            if not back:
                f.warn(f"{who}: PTR {', '.join(item['ptr'])} does not resolve back to "
                       f"{item['address']}")
            else:
                shown.append(f"{item['address']} <-> {back[0]}")
        return f.verdict("forward-confirmed: " + ", ".join(shown))


@register
class Dnsbl(Check):
    meta = CheckMeta(
        id="mail.dnsbl",
        needs=("dns.ns.authoritative",),
        family="mail",
        title="No MX address is listed on the configured DNS blocklists",
        query=(
            "reversed IP under the configured DNSBL zones (e.g. zen.spamhaus.org), through the "
            "appliance's own resolver"
        ),
        verdicts=(
            "fail listed (127.0.0.2-127.0.0.11 etc.); treat 127.255.255.x as `error`, not a "
            "listing (RFC 5782)"
        ),
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=3600,
        timeout=20,
        standards=("RFC 5782 2.1", "RFC 5782 5"),
    )

    def applies(self, target: Target) -> bool:
        return super().applies(target) and bool(spec_of(target).dnsbl)

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        mx = mx_facts(ctx, target.name)
        queries: list[dict[str, Any]] = []
        for host, address in smtp_endpoints(mx):
            for zone in spec_of(target).dnsbl:
                name = dnsbl_name(address, zone)
                item: dict[str, Any] = {"mx": host, "address": address, "zone": zone,
                                        "name": name}
                try:
                    answer = ctx.resolve(name, "A")
                    item.update(rcode=answer.rcode, a=answer.records)
                    if answer.records:
                        reason = ctx.resolve(name, "TXT")
                        item["txt"] = reason.texts[:3]
                except ProbeError as exc:
                    item["error"] = exc.reason
                queries.append(item)
        return {"domain": target.name, "zones": spec_of(target).dnsbl,
                "null_mx": null_mx(mx), "queries": queries}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        if not facts["queries"]:
            return f.verdict("null MX: no address to check" if facts.get("null_mx")
                             else "no MX address to look up")
        for q in facts["queries"]:
            who = f"{q['address']} ({q['mx']}) on {q['zone']}"
            if q.get("error"):
                f.error(f"{who}: lookup failed: {q['error']}")
                continue
            codes = [ipaddress.ip_address(a) for a in q.get("a", []) if _is_v4(a)]
            if not codes:
                continue
            if any(c in ERROR_NET for c in codes):
                f.error(f"{who}: the list refused the query ({', '.join(map(str, codes))}: "
                        "blocked or rate-limited resolver, not a listing)")
            elif all(c in LISTING_NET for c in codes):
                why = f": {q['txt'][0]}" if q.get("txt") else ""
                f.fail(f"{who} is LISTED ({', '.join(map(str, codes))}){why}")
            else:
                f.error(f"{who}: answer outside 127.0.0.0/8 ({', '.join(map(str, codes))}): "
                        "a wildcard or hijacking resolver, not a DNSBL answer (RFC 5782 2.1)")
        addresses = len({q["address"] for q in facts["queries"]})
        return f.verdict(f"{addresses} address(es) not listed on {', '.join(facts['zones'])}")


def _is_v4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False
