"""dns.declared: every authoritative name server serves the records the fleet needs.

The records are derived from the fleet file (`watchtower.dnsdecl.derive`). Each of the zone's
name servers, through its first address that answers, is asked directly and without recursion
for every declared (name, type), and for A/AAAA/CNAME at every declared address name (RFC 1034
4.3.2: an authoritative answer is the zone's data as that server holds it). Asking each server,
not the resolver, is the point: a secondary that missed an update serves a zone the resolver
may hide for hours.

Verdict (catalog): fail when a declared record is missing or different on any server; warn
for an extra record of a managed type at a managed name; error when no server could be asked.
Servers that disagree are named in the summary. The facts carry the declared records and what
each server served, so the judgement is recomputed from recorded facts alone.

dns.octodns (same module: it shares the declaration and the comparison): a zone kept as code by
octoDNS, judged by octoDNS's own plan (drift on the server) and by the zone YAML against the
declared records (what only a commit fixes); docs/declared-dns.md.
"""

from __future__ import annotations

from typing import Any

from watchtower.config import Zone
from watchtower.dnsdecl import declare
from watchtower.dnsdecl.compare import Difference, compare, queries
from watchtower.dnsdecl.derive import find_zone
from watchtower.dnsdecl.plan import served_from_api
from watchtower.dnsdecl.records import Record
from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.dns import DnsError
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .dns.common import nameservers, server_pairs, zone_name


def _ask(ctx: ProbeContext, address: str, slots: list[tuple[str, str]]) -> dict[str, Any]:
    """Every slot's records as one server serves them. A CNAME at an address name comes back
    in the A/AAAA answer (RFC 1034 4.3.2 step 3a), so it is read from there, not asked."""
    wanted = set(slots)
    cnames: dict[str, list[str]] = {}
    records: dict[tuple[str, str], list[str]] = {}
    for name, rtype in slots:
        if rtype == "CNAME" and ((name, "A") in wanted or (name, "AAAA") in wanted):
            continue
        try:
            reply = ctx.dns.ask(address, name, rtype, deadline=ctx.deadline)
        except DnsError as exc:
            return {"error": exc.reason, "served": []}
        if reply.rcode not in ("NOERROR", "NXDOMAIN") or not reply.aa:
            return {"error": f"{name} {rtype}: {reply.rcode}"
                             f"{'' if reply.aa else ' without AA'}", "served": []}
        rrset = reply.rrset(rtype, name)
        records[(name, rtype)] = sorted(rd.to_text() for rd in rrset) if rrset else []
        cname = reply.rrset("CNAME", name)
        if cname is not None:
            cnames[name] = sorted(rd.to_text() for rd in cname)
    return {"error": None, "served": [
        {"name": name, "type": rtype,
         "records": records.get((name, rtype), cnames.get(name, []) if rtype == "CNAME"
                                else [])}
        for name, rtype in slots]}


def _ask_server(ctx: ProbeContext, server: dict[str, Any], slots: list[tuple[str, str]]
                ) -> dict[str, Any]:
    """One name server, through its first address that answers (each NS is judged once)."""
    outcome: dict[str, Any] = {"address": None, "error": server.get("problem") or "no address",
                               "served": []}
    for address in server["addresses"]:
        outcome = {"address": address, **_ask(ctx, address, slots)}
        if not outcome["error"]:
            break
    return {"ns": server["name"], **outcome}


def differences(facts: Facts) -> dict[str, list[Difference]]:
    """Per server (`ns (address)`), the differences between declared and served; pure."""
    declared = [Record.from_json(r) for r in facts.get("declared", [])]
    out: dict[str, list[Difference]] = {}
    for server in facts.get("servers", []):
        if server.get("error"):
            continue
        served = {(s["name"], s["type"]): list(s["records"]) for s in server.get("served", [])}
        out[f"{server['ns']} ({server['address']})"] = compare(declared, served)
    return out


@register
class DnsDeclared(Check):
    meta = CheckMeta(
        id="dns.declared",
        needs=("dns.ns.authoritative",),
        family="dns",
        title="Every name server serves the records the fleet needs",
        query=(
            "the records the fleet needs (derived from the fleet config) vs what every "
            "authoritative NS serves"
        ),
        verdicts=(
            "fail a needed record missing or different on any NS; warn an extra record of a "
            "managed type"
        ),
        applies_to=(TargetKind.ZONE,),
        interval=900,
        timeout=60,
        standards=("RFC 1034 4.3.2", "RFC 2181 5.1", "RFC 7505", "RFC 7208", "RFC 7489",
                   "RFC 6376 3.6.1", "RFC 8461 3.1", "RFC 8460 3", "RFC 7672 3.1",
                   "RFC 8659 4.2"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        zone = zone_name(target)
        spec = target.spec if isinstance(target.spec, Zone) else find_zone(ctx.fleet, zone)
        if spec is None:
            raise ProbeError(f"{zone} is not a [[zones]] entry", kind="input")
        declaration = declare(ctx.fleet, spec, ctx)
        _, servers = nameservers(zone, ctx)
        if not server_pairs(servers):
            raise ProbeError(f"no address for any name server of {zone}", kind="dns")
        slots = queries(declaration.records)
        return {
            "zone": zone,
            "declared": [r.to_json() for r in declaration.records],
            "unlocated": declaration.unlocated,
            "problems": declaration.problems,
            "servers": [_ask_server(ctx, server, slots) for server in servers],
        }

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        servers = facts.get("servers", [])
        if not facts.get("declared"):
            f.ok("the fleet declares no records in this zone")
        for problem in facts.get("problems", []):
            f.warn(f"cannot declare: {problem}")
        for server in servers:
            if server.get("error"):
                f.error(f"{server.get('ns')} ({server.get('address')}): {server['error']}")
        per_server = differences(facts)
        if servers and not per_server:
            return f.verdict("no name server answered")
        seen = {where: {d.describe() for d in diffs} for where, diffs in per_server.items()}
        everywhere = set.intersection(*seen.values()) if seen else set()
        odd = {where: [d for d in diffs if d.describe() not in everywhere]
               for where, diffs in per_server.items()}
        odd = {where: diffs for where, diffs in odd.items() if diffs}
        if len(seen) > 1 and odd:
            message = "name servers disagree: " + "; ".join(
                f"{where} {', '.join(d.describe() for d in diffs)}"
                for where, diffs in odd.items())
            if any(d.kind != "extra" for diffs in odd.values() for d in diffs):
                f.fail(message)
            else:
                f.warn(message)
        labels: dict[str, str] = {}
        for where, diffs in per_server.items():
            for d in diffs:
                text = d.describe()
                label = text if text in everywhere and len(seen) > 1 else f"{where}: {text}"
                labels.setdefault(label, d.kind)
        for label, kind in labels.items():
            if kind == "extra":
                f.warn(label)
            else:
                f.fail(label)
        return f.verdict(f"{len(facts.get('declared', []))} declared records served by "
                         f"{len(per_server)} name server(s)")

    def evidence(self, facts: Facts) -> dict[str, Any]:
        out = dict(super().evidence(facts))
        out["differences"] = {where: [d.to_json() for d in diffs]
                              for where, diffs in differences(facts).items()}
        return out


def octodns_findings(facts: Facts) -> tuple[list[Difference], list[dict[str, Any]]]:
    """(what the fleet needs that the YAML lacks or has otherwise, what octoDNS would change on
    the server); pure."""
    declared = [Record.from_json(r) for r in facts.get("declared", [])]
    in_yaml = served_from_api(facts.get("yaml", []))
    lacks = compare(declared, {slot: in_yaml.get(slot, []) for slot in queries(declared)})
    return lacks, list(facts.get("changes", []))


def describe_change(change: dict[str, Any]) -> str:
    """One octoDNS change in the words of drift: what the server holds against the YAML."""
    what = f"{change['name']} {change['type']}"
    if change["action"] == "create":
        return f"in the YAML, not on the server: {what} {', '.join(change['values'])}"
    if change["action"] == "delete":
        return f"on the server, not in the YAML: {what} {', '.join(change['existing_values'])}"
    return (f"the server differs from the YAML: {what} serves "
            f"{', '.join(change['existing_values'])} (ttl {change['existing_ttl']}), the YAML "
            f"says {', '.join(change['values'])} (ttl {change['ttl']})")


@register
class DnsOctoDns(Check):
    """A zone kept as code by octoDNS: octoDNS's own plan for it is empty (the server holds
    what the YAML says), and the YAML holds what the fleet needs. The two are reported apart:
    drift on the server is undone by a sync, a gap in the YAML only by a commit."""

    meta = CheckMeta(
        id="dns.octodns",
        family="dns",
        title="An octoDNS-managed zone: the server holds its YAML, the YAML what the fleet needs",
        query=(
            "zones kept as code (`[[zones]] octodns`): octoDNS's own plan for the zone (its "
            "Manager, dry run) and the zone YAML vs the records the fleet needs"
        ),
        verdicts=(
            "fail any change octoDNS would make (drift: each create/update/delete is evidence; "
            "records on the server the YAML does not know apart as `server_only`), or a needed "
            "record missing or different in the YAML (`yaml_lacks`); warn an extra record in the "
            "YAML at a managed name; error when the YAML does not load or octoDNS cannot plan"
        ),
        applies_to=(TargetKind.ZONE,),
        interval=900,
        timeout=60,
        standards=("RFC 1034 4.3.2", "RFC 7208", "RFC 7489", "RFC 6376 3.6.1", "RFC 8659 4.2"),
    )

    def applies(self, target: Target) -> bool:
        return isinstance(target.spec, Zone) and target.spec.octodns is not None

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        from watchtower.dnsdecl.gitrepo import rev
        from watchtower.dnsdecl.octodns import managed, rrsets, source
        from watchtower.net import octodns

        spec = target.spec if isinstance(target.spec, Zone) else None
        octo = managed(ctx.fleet, spec) if spec is not None else None
        if spec is None or octo is None:
            raise ProbeError(f"{target.name} is not an octoDNS-managed [[zones]] entry",
                             kind="input")
        src = source(octo)
        path = src.relpath(octo.repo)
        try:
            text = src.path.read_text()
        except OSError as exc:
            raise ProbeError(f"{src.path}: cannot read ({exc.strerror})", kind="input") from None
        yaml_rrsets = rrsets(text, octo.name, src, path)
        declaration = declare(ctx.fleet, spec, ctx)
        changes = octodns.plan(str(octo.config), str(octo.repo), octo.name, octo.target,
                               max(1.0, min(octo.timeout, ctx.remaining())))
        return {"zone": octo.name, "config": str(octo.config), "target": octo.target,
                "file": path, "commit": rev(octo.repo, "HEAD"),
                "declared": [r.to_json() for r in declaration.records],
                "unlocated": declaration.unlocated, "problems": declaration.problems,
                "yaml": yaml_rrsets, "changes": changes}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        lacks, changes = octodns_findings(facts)
        for problem in facts.get("problems", []):
            f.warn(f"cannot declare: {problem}")
        for change in changes:
            f.fail(f"drift: {describe_change(change)}")
        for d in lacks:
            text = f"{facts.get('file', 'the YAML')}: {d.describe()}"
            if d.kind == "extra":
                f.warn(text)
            else:
                f.fail(f"the fleet needs: {text}")
        return f.verdict(f"{len(facts.get('declared', []))} declared records; octoDNS plans "
                         f"{len(changes) or 'no'} change(s) to {facts.get('target')}")

    def evidence(self, facts: Facts) -> dict[str, Any]:
        out = dict(super().evidence(facts))
        lacks, changes = octodns_findings(facts)
        out["yaml_lacks"] = [d.to_json() for d in lacks if d.kind != "extra"]
        out["yaml_extra"] = [d.to_json() for d in lacks if d.kind == "extra"]
        out["drift"] = changes
        out["server_only"] = [c for c in changes if c["action"] == "delete"]
        return out
