"""dns.caa: which CAs may issue for the zone, and whether the served certificates' CA is one.

RFC 8659 3: the Relevant RRset for a name is the CAA RRset found by climbing from the name
towards the root, stopping at the first name that has one (CNAMEs are followed by the resolver).
The walk is done here through the sweep's resolver, once for the zone apex and once for each web
host of the zone (a host may carry its own CAA); parsing and the authorization rule are
`watchtower.parsers.caa`.

The issuer rule needs the CA of each served certificate: the zone's HTTPS endpoints (from the
fleet) are probed with `ctx.tls_probe`, the issuing CA's organisation (O=, else CN=) is mapped to
its CAA domain with `[probe] caa_issuers`, and `authorizes` answers for that domain. A CA
missing from the mapping is a warning (we cannot tell), a TLS probe that fails is noted and left
to the web.* checks.
"""

from __future__ import annotations

from typing import Any

import dns.name
from cryptography import x509
from cryptography.x509.oid import NameOID

from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.dns import DnsError
from watchtower.parsers import ParseError
from watchtower.parsers import caa as caa_parser
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import fleet_web_endpoints, in_zone, zone_name

MAX_HOSTS = 16  # web hosts probed per zone: enough for a provider's zone, bounded for a sweep


def _walk(name: str, ctx: ProbeContext) -> dict[str, Any]:
    """Climb from `name` to the first name owning CAA records (RFC 8659 3)."""
    steps: list[dict[str, Any]] = []
    current = dns.name.from_text(name)
    while current != dns.name.root:
        text = current.to_text()
        try:
            answer = ctx.resolve(text, "CAA")
        except DnsError as exc:
            steps.append({"name": text, "error": exc.reason})
            return {"name": name, "steps": steps, "relevant": None, "records": [],
                    "error": f"CAA lookup of {text} failed: {exc.reason}"}
        steps.append({"name": text, "rcode": answer.rcode, "records": answer.records,
                      **({"cname_chain": list(answer.cname_chain)} if answer.cname_chain
                         else {})})
        if answer.rrset is not None and len(answer.rrset):
            records = [{"flags": int(rd.flags), "tag": rd.tag.decode("ascii", "replace"),
                        "value": rd.value.decode("utf-8", "replace")} for rd in answer.rdatas]
            return {"name": name, "steps": steps, "relevant": text,
                    "records": sorted(records, key=lambda r: (r["tag"], r["value"]))}
        current = current.parent()
    return {"name": name, "steps": steps, "relevant": None, "records": []}


def _issuer_names(der: bytes) -> tuple[str | None, str | None]:
    cert = x509.load_der_x509_certificate(der)
    org = cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    cn = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return (str(org[0].value) if org else None, str(cn[0].value) if cn else None)


def caa_domain_for(issuers: dict[str, str], org: str | None, cn: str | None) -> str | None:
    """The CAA domain of a CA known by organisation (preferred) or common name."""
    lowered = {k.casefold(): v for k, v in issuers.items()}
    for candidate in (org, cn):
        if candidate and candidate.casefold() in lowered:
            return lowered[candidate.casefold()]
    return None


@register
class Caa(Check):
    meta = CheckMeta(
        id="dns.caa",
        needs=("dns.ns.authoritative",),
        family="dns",
        title="CAA restricts issuance, parses, and authorizes the CA actually serving",
        query="CAA, walking up the tree",
        verdicts=(
            "warn none; fail syntax error or no `issue` tag; warn if the serving certificate's CA "
            "is not authorized (RFC 8659/8657)"
        ),
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=30,
        standards=("RFC 8659 3", "RFC 8659 4", "RFC 8657", "CA/B Forum BR 3.2.2.8"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        zone = zone_name(target)
        facts: Facts = {"zone": zone, "apex": _walk(zone, ctx), "hosts": []}
        issuers = ctx.fleet.probe.caa_issuers
        seen: set[tuple[str, int]] = set()
        for host, port in fleet_web_endpoints(ctx):
            if not in_zone(host, zone) or (host, port) in seen or len(seen) >= MAX_HOSTS:
                continue
            seen.add((host, port))
            entry: dict[str, Any] = {"host": host, "port": port}
            walk = _walk(host + ".", ctx) if host != zone.rstrip(".") else facts["apex"]
            entry.update({"relevant": walk["relevant"], "records": walk["records"],
                          "walk_error": walk.get("error")})
            try:
                tls = ctx.tls_probe(host, port)
            except ProbeError as exc:
                entry["tls_error"] = exc.reason
            else:
                if tls.leaf is not None:
                    org, cn = _issuer_names(tls.leaf.der)
                    entry.update({"issuer": tls.leaf.issuer, "issuer_org": org,
                                  "caa_domain": caa_domain_for(issuers, org, cn)})
                else:
                    entry["tls_error"] = "no certificate served"
            facts["hosts"].append(entry)
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        apex = facts.get("apex") or {}
        if apex.get("error"):
            f.error(apex["error"])
            return f.verdict("")
        records = apex.get("records") or []
        if not records:
            f.warn(f"no CAA record for {facts['zone']} or any parent: any CA may issue "
                   "certificates for it")
        else:
            self._judge_set(apex.get("relevant") or facts["zone"], records, f)
        judged_sets = {apex.get("relevant")}
        for host in facts.get("hosts") or []:
            name = host["host"]
            if host.get("walk_error"):
                f.error(f"{name}: {host['walk_error']}")
                continue
            if host.get("relevant") not in judged_sets and host.get("records"):
                judged_sets.add(host.get("relevant"))
                self._judge_set(host["relevant"], host["records"], f)
            if host.get("tls_error"):
                f.ok(f"{name}: certificate not checked against CAA ({host['tls_error']})")
                continue
            if not host.get("records"):
                f.ok(f"{name}: no CAA applies, any CA ({host.get('issuer_org')}) may issue")
                continue
            domain = host.get("caa_domain")
            if not domain:
                f.warn(f"{name}: certificate issuer {host.get('issuer_org') or host.get('issuer')}"
                       " is not in [probe] caa_issuers, so CAA cannot be checked against it")
                continue
            tuples = [(int(r["flags"]), str(r["tag"]), str(r["value"]))
                      for r in host["records"]]
            if caa_parser.authorizes(tuples, domain):
                f.ok(f"{name}: served certificate's CA {domain} is authorized by CAA at "
                     f"{host['relevant']}")
            else:
                f.warn(f"{name}: served certificate comes from {domain} "
                       f"({host.get('issuer_org')}), which CAA at {host['relevant']} does not "
                       "authorize: the next renewal will fail")
        if not records:
            return f.verdict("")
        issuers = sorted({r["value"] for r in records if r["tag"].lower() == "issue"})
        return f.verdict(f"CAA at {apex.get('relevant')} allows {', '.join(issuers)}")

    @staticmethod
    def _judge_set(owner: str, records: list[dict[str, Any]], f: Findings) -> None:
        """Syntax (RFC 8659 4) and the presence of an `issue` property on one RRset."""
        parsed = []
        for r in records:
            try:
                parsed.append(caa_parser.parse(int(r["flags"]), str(r["tag"]), str(r["value"])))
            except (ParseError, ValueError, TypeError) as exc:
                f.fail(f"CAA at {owner}: {r.get('flags')} {r.get('tag')} "
                       f"\"{r.get('value')}\": {exc}")
        for rec in parsed:
            if rec.critical and not rec.known:
                f.fail(f"CAA at {owner}: unknown critical tag {rec.tag!r} forbids all issuance")
        if not any(str(r["tag"]).lower() == "issue" for r in records):
            f.fail(f"CAA at {owner} has no issue property: issuance for the name itself is "
                   "not restricted (only " + ", ".join(sorted({str(r["tag"]) for r in records}))
                   + ")")
