"""Delegation and name-server behaviour: NS count, authority, consistency, recursion, AXFR.

Each check asks every address of every NS of the zone directly (`Resolver.ask`, no RD), so a
single bad server shows up even when the others hide it from resolvers.

How a server that never answers is judged (one rule for all checks here): when *no* server of
the zone answers, the probe could not run and the result is `error`. When some answer and one
does not, the silent one is a delegation problem (resolvers sent there time out; Zonemaster
reports it as an unreachable or lame server), so `dns.ns.authoritative` fails it; the other
checks note it and judge what they could see.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from watchtower.model import Findings, Result, Status, Target, TargetKind, Verdict
from watchtower.net.dns import DnsError
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import (
    ask_each,
    nameservers,
    server_pairs,
    where,
    zone_name,
)

#: Asked with RD set to each name server: a name no authoritative-only server serves. Reserved
#: by RFC 2606, so a server that answers it with RA set did recursion (or tried to) for us.
RECURSION_PROBE_NAME = "watchtower-recursion-probe.example."


def _network_key(address: str) -> str:
    ip = ipaddress.ip_address(address)
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _no_server_answered(servers: list[dict[str, Any]]) -> bool:
    return bool(servers) and all(s.get("error") for s in servers)


@register
class NsCount(Check):
    meta = CheckMeta(
        id="dns.ns.count",
        family="dns",
        title="At least two name servers, not all in one network",
        query="NS set",
        verdicts="fail < 2 NS; warn if all NS addresses in one /24 (v4) or /48 (v6)",
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=15,
        standards=("RFC 1034 4.1", "RFC 2182 3.1", "Zonemaster DELEGATION01"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        zone = zone_name(target)
        rcode, servers = nameservers(zone, ctx)
        return {"zone": target.name, "rcode": rcode, "nameservers": servers}

    def blocks(self, result: Result) -> bool:
        """The zone does not exist or has no name server: nothing in it can be judged. Fewer
        than two, or one network, is this check's failure alone; and an `error` (the resolver
        did not answer) is left to dns.ns.authoritative, which asks the servers themselves."""
        return result.status is Status.FAIL and (result.evidence.get("rcode") == "NXDOMAIN"
                                                 or not result.evidence.get("nameservers"))

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        servers = facts["nameservers"]
        if facts.get("rcode") == "NXDOMAIN":
            f.fail(f"zone {facts['zone']} does not exist (NXDOMAIN)")
            return f.verdict("")
        if len(servers) < 2:
            f.fail(f"{len(servers)} name server(s); at least 2 are required")
        for s in servers:
            if not s["addresses"]:
                f.fail(f"name server {s['name']} has no address"
                       + (f" ({s['problem']})" if s.get("problem") else ""))
        for version in (4, 6):
            # Distinct addresses: two NS names on one address are one server, one network.
            addrs = {a for s in servers for a in s["addresses"]
                     if ipaddress.ip_address(a).version == version}
            nets = {_network_key(a) for a in addrs}
            if len(servers) >= 2 and len(addrs) >= 2 and len(nets) == 1:
                f.warn(f"all IPv{version} name server addresses are in {nets.pop()}: "
                       "one network outage takes the zone down")
        return f.verdict(f"{len(servers)} name servers in distinct networks")


class _PerServerCheck(Check):
    """Shared gather shape: the NS set, then one fact dict per (NS, address)."""

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        zone = zone_name(target)
        rcode, servers = nameservers(zone, ctx)
        facts: Facts = {"zone": zone, "rcode": rcode,
                        "nameservers": [s["name"] for s in servers],
                        "servers": self.per_server(zone, server_pairs(servers), ctx)}
        return facts

    def per_server(self, zone: str, pairs: list[tuple[str, str]], ctx: ProbeContext
                   ) -> list[dict[str, Any]]:
        raise NotImplementedError


def _soa_facts(zone: str, pairs: list[tuple[str, str]], ctx: ProbeContext
               ) -> list[dict[str, Any]]:
    out = []
    for ns, address, reply, err in ask_each(ctx, pairs, zone, "SOA"):
        entry: dict[str, Any] = {"ns": ns, "address": address}
        if err is not None or reply is None:
            entry["error"] = err.reason if err else "no reply"
            out.append(entry)
            continue
        soa = reply.rrset("SOA", zone)
        entry.update({"rcode": reply.rcode, "aa": reply.aa,
                      "soa": soa[0].to_text() if soa else None,
                      "serial": int(soa[0].serial) if soa else None})
        out.append(entry)
    return out


@register
class NsAuthoritative(_PerServerCheck):
    meta = CheckMeta(
        id="dns.ns.authoritative",
        needs=("dns.ns.count",),
        family="dns",
        title="Every name server answers authoritatively for the zone (no lame delegation)",
        query="SOA to each NS address",
        verdicts=(
            "fail if any NS answers without AA or refuses (lame delegation; Zonemaster "
            "DELEGATION04)"
        ),
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=20,
        standards=("RFC 1034 4.2.2", "RFC 1912 2.8", "Zonemaster DELEGATION04"),
    )

    def per_server(self, zone: str, pairs: list[tuple[str, str]], ctx: ProbeContext
                   ) -> list[dict[str, Any]]:
        return _soa_facts(zone, pairs, ctx)

    def blocks(self, result: Result) -> bool:
        """The zone is not served: no name server answers authoritatively with its SOA (one
        lame server of several is this check's failure alone; the others still serve). An
        `error` blocks when the servers were asked and none answered; not when the probe
        could not run (no NS set from the resolver: its evidence has no `servers`), so one
        resolver timeout does not leave a whole domain unjudged."""
        if result.status is Status.ERROR:
            return "servers" in result.evidence
        return result.status is Status.FAIL and not any(
            not s.get("error") and s.get("rcode") == "NOERROR" and s.get("aa") and s.get("soa")
            for s in result.evidence.get("servers", []))

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        servers = facts.get("servers", [])
        if facts.get("rcode") == "NXDOMAIN":
            f.fail(f"zone {facts['zone']} does not exist (NXDOMAIN)")
            return f.verdict("")
        if not servers:
            f.error("no name server address to ask")
            return f.verdict("")
        if _no_server_answered(servers):
            f.error("no name server answered: " + "; ".join(
                f"{where(s)}: {s['error']}" for s in servers))
            return f.verdict("")
        for s in servers:
            if s.get("error"):
                f.fail(f"{where(s)} did not answer ({s['error']}): lame delegation")
            elif s.get("rcode") != "NOERROR":
                f.fail(f"{where(s)} answered {s.get('rcode')} for the zone: lame delegation")
            elif not s.get("aa"):
                f.fail(f"{where(s)} answered without AA: not authoritative (lame delegation)")
            elif not s.get("soa"):
                f.fail(f"{where(s)} is authoritative but served no SOA for the zone apex")
            else:
                f.ok(f"{where(s)} authoritative, SOA {s['soa']}")
        return f.verdict(f"all {len(servers)} name server addresses answer authoritatively")


@register
class NsConsistency(_PerServerCheck):
    meta = CheckMeta(
        id="dns.ns.consistency",
        needs=("dns.ns.authoritative",),
        family="dns",
        title="Name servers agree on the SOA serial and the NS set",
        query="SOA serial + NS set from each NS",
        verdicts="warn serial differs (CONSISTENCY01); fail NS sets differ (CONSISTENCY04)",
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=20,
        standards=("RFC 1034 4.3.5", "Zonemaster CONSISTENCY01", "Zonemaster CONSISTENCY04"),
    )

    def per_server(self, zone: str, pairs: list[tuple[str, str]], ctx: ProbeContext
                   ) -> list[dict[str, Any]]:
        out = _soa_facts(zone, pairs, ctx)
        ns_replies = {address: (reply, err) for _, address, reply, err
                      in ask_each(ctx, pairs, zone, "NS")}
        for entry in out:
            reply, err = ns_replies.get(entry["address"], (None, None))
            if reply is not None and reply.aa and reply.rcode == "NOERROR":
                rrset = reply.rrset("NS", zone)
                entry["ns_set"] = sorted(rd.target.to_text().lower() for rd in rrset or [])
            else:
                entry["ns_set"] = None
                if err is not None and not entry.get("error"):
                    entry["error"] = err.reason
        return out

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        servers = facts.get("servers", [])
        usable = [s for s in servers if not s.get("error") and s.get("aa")
                  and s.get("serial") is not None]
        if not usable:
            f.error("no name server gave an authoritative SOA to compare"
                    + ("".join(f"; {where(s)}: {s.get('error') or s.get('rcode')}"
                               for s in servers[:4])))
            return f.verdict("")
        for s in servers:
            if s not in usable:
                f.ok(f"{where(s)} not compared: {s.get('error') or s.get('rcode') or 'no AA'} "
                     "(see dns.ns.authoritative)")
        serials: dict[int, list[str]] = {}
        for s in usable:
            serials.setdefault(int(s["serial"]), []).append(where(s))
        if len(serials) > 1:
            f.warn("SOA serials differ: " + ", ".join(
                f"{serial} at {', '.join(who)}" for serial, who in sorted(serials.items())))
        ns_sets: dict[tuple[str, ...], list[str]] = {}
        for s in usable:
            if s.get("ns_set") is not None:
                ns_sets.setdefault(tuple(s["ns_set"]), []).append(where(s))
        if len(ns_sets) > 1:
            f.fail("NS sets differ: " + "; ".join(
                f"{' '.join(names) or '(empty)'} at {', '.join(who)}"
                for names, who in sorted(ns_sets.items())))
        serial = next(iter(serials))
        return f.verdict(f"{len(usable)} name server addresses agree: serial {serial}, "
                         f"NS set {' '.join(next(iter(ns_sets), ()))}")


@register
class NsOpenRecursion(_PerServerCheck):
    meta = CheckMeta(
        id="dns.ns.open-recursion",
        family="dns",
        title="Name servers do not offer recursion to the world",
        query="recursive query for an outside name to each NS",
        verdicts="fail if recursion offered (NAMESERVER01)",
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=20,
        standards=("RFC 5358", "Zonemaster NAMESERVER01"),
    )

    def per_server(self, zone: str, pairs: list[tuple[str, str]], ctx: ProbeContext
                   ) -> list[dict[str, Any]]:
        out = []
        for ns, address, reply, err in ask_each(ctx, pairs, RECURSION_PROBE_NAME, "A",
                                                dnssec=False, recursion=True):
            entry: dict[str, Any] = {"ns": ns, "address": address,
                                     "question": f"{RECURSION_PROBE_NAME} A (RD set)"}
            if reply is None:
                entry["error"] = err.reason if err else "no reply"
            else:
                entry.update({"rcode": reply.rcode, "ra": reply.ra, "aa": reply.aa,
                              "answer": [rr.to_text() for rr in reply.answer]})
            out.append(entry)
        return out

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        servers = facts.get("servers", [])
        if not servers or _no_server_answered(servers):
            f.error("no name server answered the recursion probe"
                    + "".join(f"; {where(s)}: {s.get('error')}" for s in servers[:4]))
            return f.verdict("")
        for s in servers:
            if s.get("error"):
                f.ok(f"{where(s)} not judged: {s['error']}")
            elif s.get("answer") and not s.get("aa"):
                f.fail(f"{where(s)} answered a name outside its zones for us "
                       f"({s['answer'][0]}): open recursive resolver")
            elif s.get("ra") and s.get("rcode") != "REFUSED":
                f.fail(f"{where(s)} offers recursion (RA set, {s.get('rcode')} for "
                       f"{s.get('question')}): open resolver, usable for amplification")
            else:
                f.ok(f"{where(s)} refuses recursion ({s.get('rcode')})")
        return f.verdict("no name server offers recursion")


@register
class NsAxfr(_PerServerCheck):
    meta = CheckMeta(
        id="dns.ns.axfr",
        needs=("dns.ns.authoritative",),
        family="dns",
        title="Name servers refuse zone transfers to strangers",
        query="AXFR from each NS",
        verdicts="fail if zone transfer allowed to us (NAMESERVER03)",
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=30,
        standards=("RFC 5936 6", "Zonemaster NAMESERVER03"),
    )

    def per_server(self, zone: str, pairs: list[tuple[str, str]], ctx: ProbeContext
                   ) -> list[dict[str, Any]]:
        out = []
        for ns, address in pairs:
            entry: dict[str, Any] = {"ns": ns, "address": address}
            try:
                entry["records"] = ctx.dns.axfr(address, zone, deadline=ctx.deadline)
            except DnsError as exc:
                entry["error"] = exc.reason
            out.append(entry)
        return out

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        servers = facts.get("servers", [])
        if not servers or _no_server_answered(servers):
            f.error("no name server could be asked for a transfer"
                    + "".join(f"; {where(s)}: {s.get('error')}" for s in servers[:4]))
            return f.verdict("")
        for s in servers:
            if s.get("error"):
                f.ok(f"{where(s)} not judged: {s['error']}")
            elif int(s.get("records") or 0) > 0:
                f.fail(f"{where(s)} transferred the whole zone to us "
                       f"({s['records']} records): AXFR open to anyone")
            else:
                f.ok(f"{where(s)} refused the transfer")
        return f.verdict("every name server refuses AXFR")
