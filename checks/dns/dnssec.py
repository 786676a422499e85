"""dns.dnssec.*: chain of trust, signature lifetime, NSEC3 parameters.

`dns.dnssec.valid` asks the zone's own servers for DNSKEY and SOA (with DO), the parent zone's
servers for the DS RRset, and so on up to the zone that `[probe] trust_anchors` anchors (the
root KSK when unset); `chain.evaluate` then validates the recorded RRsets.

How a zone is judged when its chain cannot reach an anchor (the parent is not reachable, not
signed, or no anchor covers it): that is *insecure*. A zone declared `dnssec = true` in the fleet
(the default) fails when insecure or unsigned, because resolvers do not validate it; a zone
declared `dnssec = false` is `ok` with a note saying so. A bogus chain fails either way: bogus
data breaks resolution for every validating resolver, whatever the fleet file says. Parent data
that cannot be fetched (timeout, SERVFAIL) is the probe's problem: `error`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dns.dnssec
import dns.rdatatype

from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.dns import DnsError, ServerReply, load_trust_anchors
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext, observed_at
from watchtower.probe.registry import register

from . import chain
from .common import (
    ask_each,
    first_reply,
    nameservers,
    rrset_facts,
    rrset_from_facts,
    server_pairs,
    where,
    zone_name,
)

EXPIRY_WARN = dt.timedelta(days=7)
EXPIRY_FAIL = dt.timedelta(days=2)
MAX_CHAIN = 12  # labels; a deeper walk means a resolver loop, not a real delegation tree

#: RRsets whose signatures `dns.dnssec.expiry` reads on every server, plus the denial records
#: (NSEC/NSEC3 RRSIGs) of a name that does not exist.
EXPIRY_TYPES = ("SOA", "DNSKEY", "NS", "MX")
NX_PROBE_LABEL = "watchtower-nx-probe"


def _declared(target: Target) -> bool:
    return bool(getattr(target.spec, "dnssec", True))


def _zone_link(zone: str, ctx: ProbeContext) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """DNSKEY (+RRSIG) of `zone` from the first of its servers that answers."""
    link: dict[str, Any] = {"zone": zone}
    try:
        _, servers = nameservers(zone, ctx)
    except DnsError as exc:
        link["error"] = f"cannot find the name servers of {zone}: {exc.reason}"
        return link, []
    pairs = server_pairs(servers)
    reply, problems = first_reply(ctx, pairs, zone, "DNSKEY")
    if reply is None:
        link["error"] = (f"no server of {zone} answered DNSKEY: " + "; ".join(problems)
                         if problems else f"{zone} has no name server address")
        return link, pairs
    link["source"] = reply.server
    link["dnskey"] = rrset_facts(reply.rrset("DNSKEY", zone))
    link["dnskey_rrsig"] = rrset_facts(reply.rrsigs("DNSKEY", zone))
    if problems:
        link["problems"] = problems
    return link, pairs


def _ds_at_parent(link: dict[str, Any], parent_pairs: list[tuple[str, str]],
                  ctx: ProbeContext) -> None:
    """The DS RRset (+RRSIG) of the link's zone, asked of the parent zone's own servers."""
    zone = link["zone"]
    reply, problems = first_reply(ctx, parent_pairs, zone, "DS")
    if reply is None:
        link["ds_error"] = ("no server of the parent zone answered DS: " + "; ".join(problems)
                            if problems else "the parent zone has no reachable name server")
        return
    link["ds_source"] = reply.server
    link["ds"] = rrset_facts(reply.rrset("DS", zone))
    link["ds_rrsig"] = rrset_facts(reply.rrsigs("DS", zone))


def _pairs_of(zone: str, ctx: ProbeContext) -> list[tuple[str, str]]:
    try:
        _, servers = nameservers(zone, ctx)
    except DnsError:
        return []
    return server_pairs(servers)


@register
class DnssecValid(Check):
    meta = CheckMeta(
        id="dns.dnssec.valid",
        family="dns",
        title="DNSSEC chain of trust from the anchor validates; algorithms and keys are strong",
        query="DS at parent, DNSKEY, RRSIG on SOA/DNSKEY, validation",
        verdicts="fail insecure/bogus; warn SHA-1 DS or RSA < 2048 (DNSSEC01/02/05/08/09/14)",
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=30,
        standards=("RFC 4033 5", "RFC 4035 5", "RFC 8624 3", "Zonemaster DNSSEC01",
                   "Zonemaster DNSSEC02", "Zonemaster DNSSEC05", "Zonemaster DNSSEC08",
                   "Zonemaster DNSSEC09", "Zonemaster DNSSEC14"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        zone = zone_name(target)
        anchors = load_trust_anchors(ctx.fleet.probe.trust_anchors)
        path = [zone]  # bottom-up: the zone, its parent zone, ... the anchored zone
        while path[-1] not in anchors and path[-1] != "." and len(path) < MAX_CHAIN:
            path.append(ctx.dns.zone_apex_above(path[-1], deadline=ctx.deadline))
        anchor_zone = path[-1] if path[-1] in anchors else None
        # Without an anchor only the zone itself is fetched (with its DS, as evidence).
        chain_zones = list(reversed(path)) if anchor_zone else [zone]
        links: list[dict[str, Any]] = []
        pairs_of: dict[str, list[tuple[str, str]]] = {}
        for name in chain_zones:
            link, pairs_of[name] = _zone_link(name, ctx)
            links.append(link)
        for link in links:
            name = link["zone"]
            up = path.index(name) + 1
            if name == anchor_zone or up >= len(path):
                continue
            parent = path[up]
            if parent not in pairs_of:
                pairs_of[parent] = _pairs_of(parent, ctx)
            _ds_at_parent(link, pairs_of[parent], ctx)
        facts: Facts = {"zone": zone, "declared": _declared(target), "anchor_zone": anchor_zone,
                        "anchor": anchors.get(anchor_zone or "", []), "links": links,
                        "soa": None, "soa_rrsig": None}
        reply, _ = first_reply(ctx, pairs_of.get(zone, []), zone, "SOA")
        if reply is not None:
            facts["soa"] = rrset_facts(reply.rrset("SOA", zone))
            facts["soa_rrsig"] = rrset_facts(reply.rrsigs("SOA", zone))
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        declared = bool(facts.get("declared", True))
        outcome = chain.evaluate(facts, observed_at(facts))
        for step in outcome.steps:
            f.ok(step)
        if outcome.state == chain.INDETERMINATE:
            f.error(f"could not gather the chain: {outcome.reason}")
            return f.verdict("")
        if outcome.state == chain.BOGUS:
            f.fail(f"bogus: {outcome.reason}")
        elif outcome.state in (chain.INSECURE, chain.UNSIGNED):
            if declared:
                f.fail(f"{'insecure' if outcome.state == chain.INSECURE else 'unsigned'}: "
                       f"{outcome.reason} (the fleet declares dnssec = true)")
            else:
                f.ok(f"{outcome.reason}; the fleet declares dnssec = false")
                return f.verdict(f"not validated: {outcome.reason} (dnssec = false)")
        self._strength(facts, f)
        return f.verdict(outcome.reason)

    @staticmethod
    def _strength(facts: Facts, f: Findings) -> None:
        """Algorithm and key-size findings for the zone's own keys and DS (RFC 8624)."""
        links = facts.get("links") or []
        if not links:
            return
        target = links[-1]
        keys = rrset_from_facts(target.get("dnskey"))
        for key in keys or []:
            tag = _key_tag(key)
            alg = int(key.algorithm)
            if alg in chain.FORBIDDEN_ALGORITHMS:
                f.fail(f"DNSKEY {tag} uses {chain.FORBIDDEN_ALGORITHMS[alg]} (algorithm {alg}), "
                       "which RFC 8624 forbids for signing (DNSSEC05)")
            elif alg in chain.WEAK_ALGORITHMS:
                f.warn(f"DNSKEY {tag} uses {chain.WEAK_ALGORITHMS[alg]} (algorithm {alg}), "
                       "not recommended by RFC 8624 (DNSSEC05)")
            if alg in chain.RSA_ALGORITHMS:
                bits = chain.rsa_bits(key)
                if bits is not None and bits < chain.MIN_RSA_BITS:
                    f.warn(f"DNSKEY {tag} is RSA-{bits}, below {chain.MIN_RSA_BITS} bits "
                           "(DNSSEC14)")
        ds = rrset_from_facts(target.get("ds"))
        for rd in ds or []:
            if int(rd.digest_type) == 1:
                f.warn(f"DS {rd.key_tag} at the parent uses SHA-1 (digest type 1), which "
                       "RFC 8624 3.3 forbids for new DS records (DNSSEC01)")


def _key_tag(key: Any) -> int:
    return int(dns.dnssec.key_id(key))


def _signatures(reply: ServerReply) -> list[dict[str, Any]]:
    out = []
    for section in (reply.answer, reply.authority):
        for rrset in section:
            if rrset.rdtype != dns.rdatatype.RRSIG:
                continue
            for sig in rrset:
                out.append({
                    "name": rrset.name.to_text(),
                    "type": dns.rdatatype.to_text(sig.type_covered),
                    "ttl": int(sig.original_ttl),
                    "key_tag": int(sig.key_tag),
                    "inception": _iso(sig.inception),
                    "expiration": _iso(sig.expiration),
                })
    return out


def _iso(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat()


@register
class DnssecExpiry(Check):
    meta = CheckMeta(
        id="dns.dnssec.expiry",
        family="dns",
        title="RRSIGs on every name server are far from expiry",
        query="earliest RRSIG expiration over all NS",
        verdicts="warn < 7 days, fail < 2 days or < record TTL (DNSSEC04)",
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=30,
        standards=("RFC 4035 5.3.1", "RFC 6781 4.4", "Zonemaster DNSSEC04"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        zone = zone_name(target)
        _, servers = nameservers(zone, ctx)
        pairs = server_pairs(servers)
        per_server: dict[str, dict[str, Any]] = {
            address: {"ns": ns, "address": address, "signatures": [], "errors": []}
            for ns, address in pairs}
        questions = [(zone, t) for t in EXPIRY_TYPES] + [(f"{NX_PROBE_LABEL}.{zone}", "A")]
        for qname, qtype in questions:
            for _, address, reply, err in ask_each(ctx, pairs, qname, qtype):
                entry = per_server[address]
                if reply is None:
                    entry["errors"].append(f"{qname} {qtype}: "
                                           f"{err.reason if err else 'no reply'}")
                else:
                    entry["signatures"].extend(_signatures(reply))
        return {"zone": zone, "declared": _declared(target),
                "servers": list(per_server.values())}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        now = observed_at(facts)
        servers = facts.get("servers") or []
        answered = [s for s in servers if s.get("signatures") or
                    len(s.get("errors") or []) < len(EXPIRY_TYPES) + 1]
        if not answered:
            f.error("no name server answered: " + "; ".join(
                f"{where(s)}: {(s.get('errors') or ['?'])[0]}" for s in servers[:4]))
            return f.verdict("")
        signed = [s for s in answered if s.get("signatures")]
        if not signed:
            return f.verdict("zone not signed: no RRSIG to expire")
        for s in answered:
            if not s.get("signatures"):
                f.fail(f"{where(s)} serves no RRSIGs while others do")
                continue
            earliest = min(s["signatures"], key=lambda sig: sig["expiration"])
            expires = dt.datetime.fromisoformat(earliest["expiration"])
            left = expires - now
            what = (f"{where(s)}: RRSIG over {earliest['name']} {earliest['type']} "
                    f"(key {earliest['key_tag']}) expires {expires:%Y-%m-%d %H:%M}Z")
            if left <= dt.timedelta(0):
                f.fail(f"{what}, already expired")
            elif left < EXPIRY_FAIL:
                f.fail(f"{what}, in {_human(left)} (< 2 days)")
            elif left < dt.timedelta(seconds=int(earliest.get("ttl") or 0)):
                f.fail(f"{what}, in {_human(left)}: sooner than its TTL "
                       f"{earliest['ttl']} s, so caches will hold expired signatures")
            elif left < EXPIRY_WARN:
                f.warn(f"{what}, in {_human(left)} (< 7 days): is the re-signing job running?")
            else:
                f.ok(f"{what}, in {_human(left)}")
        first = min((sig for s in signed for sig in s["signatures"]),
                    key=lambda sig: sig["expiration"])
        left = dt.datetime.fromisoformat(first["expiration"]) - now
        return f.verdict(f"earliest RRSIG expiry in {_human(left)} "
                         f"({first['name']} {first['type']}) over {len(signed)} server(s)")


def _human(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.1f} days"


@register
class DnssecNsec3(Check):
    meta = CheckMeta(
        id="dns.dnssec.nsec3",
        family="dns",
        title="NSEC3 parameters follow RFC 9276 (no extra iterations, no salt)",
        query="NSEC3PARAM",
        verdicts="warn iterations > 0 or salt set (RFC 9276)",
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=20,
        standards=("RFC 5155 4", "RFC 9276 3.1", "Zonemaster DNSSEC03"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        zone = zone_name(target)
        _, servers = nameservers(zone, ctx)
        pairs = server_pairs(servers)
        facts: Facts = {"zone": zone, "signed": None, "nsec3param": [], "problems": []}
        keys, problems = first_reply(ctx, pairs, zone, "DNSKEY")
        facts["problems"] = problems
        if keys is None:
            return facts
        facts["signed"] = keys.rrset("DNSKEY", zone) is not None
        param, problems = first_reply(ctx, pairs, zone, "NSEC3PARAM")
        facts["problems"] += problems
        if param is not None:
            facts["server"] = param.server
            rrset = param.rrset("NSEC3PARAM", zone)
            facts["nsec3param"] = sorted(rd.to_text() for rd in rrset or [])
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        if facts.get("signed") is None:
            f.error("no name server answered: " + "; ".join(facts.get("problems") or ["?"]))
            return f.verdict("")
        if not facts["signed"]:
            return f.verdict("zone not signed: no NSEC3 parameters to judge")
        params = facts.get("nsec3param") or []
        if not params:
            return f.verdict("NSEC in use (no NSEC3PARAM): nothing to tune")
        for text in params:
            parts = text.split()
            if len(parts) != 4 or not parts[2].isdigit():
                f.fail(f"unreadable NSEC3PARAM {text!r}")
                continue
            iterations, salt = int(parts[2]), parts[3]
            if iterations > 0:
                f.warn(f"NSEC3 uses {iterations} extra iterations; RFC 9276 3.1 asks for 0"
                       + (" (validators may treat > 100 as insecure)" if iterations > 100
                          else ""))
            if salt != "-":
                f.warn(f"NSEC3 uses salt {salt}; RFC 9276 3.1 asks for none")
        return f.verdict(f"NSEC3 with 0 iterations and no salt ({params[0]})")

