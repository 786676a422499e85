"""mail.dmarc.*: policy discovery (with organizational-domain fallback), policy strength, and
authorization of report destinations outside the organization."""

from __future__ import annotations

from typing import Any

from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.parsers import ParseError
from watchtower.parsers import dmarc as dmarc_parser
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import txt_texts


def discovery_facts(domain: str, ctx: ProbeContext) -> Facts:
    """RFC 7489 6.6.3: `_dmarc.<domain>`; when it has no DMARC record at all, the
    organizational domain's (Public Suffix List). Several records end discovery: no fallback."""
    org = dmarc_parser.organizational_domain(domain)
    first = txt_texts(ctx, f"_dmarc.{domain}")
    queried = [first]
    records = dmarc_parser.select_dmarc(first["txt"])
    policy_domain: str | None = domain
    if not records and org != domain:
        second = txt_texts(ctx, f"_dmarc.{org}")
        queried.append(second)
        records = dmarc_parser.select_dmarc(second["txt"])
        policy_domain = org
    if not records:
        policy_domain = None
    return {"domain": domain, "org_domain": org, "queried": queried, "records": records,
            "policy_domain": policy_domain, "fallback": policy_domain not in (None, domain)}


def parsed_record(facts: Facts) -> tuple[dmarc_parser.DmarcRecord | None, str | None]:
    """The one valid record, or why there is none (a sentence for the verdict)."""
    records = facts["records"]
    if not records:
        names = " and ".join(q["name"] for q in facts["queried"])
        return None, f"no DMARC record at {names}"
    if len(records) > 1:
        return None, (f"{len(records)} DMARC records at _dmarc.{facts['policy_domain']}: "
                      "receivers apply none (RFC 7489 6.6.3)")
    try:
        return dmarc_parser.parse(records[0]), None
    except ParseError as exc:
        return None, f"DMARC syntax error: {exc}"


@register
class DmarcRecord(Check):
    meta = CheckMeta(
        id="mail.dmarc.record",
        needs=("dns.ns.authoritative",),
        title="One valid DMARC record (or the organizational domain's)",
        query="TXT at `_dmarc.<domain>`, fallback to organizational domain (Public Suffix List)",
        verdicts="fail none, more than one, syntax error, duplicate tags (RFC 7489 / 9989)",
        standards=("RFC 7489 6.3", "RFC 7489 6.6.3", "RFC 9989"),
        family="mail", applies_to=(TargetKind.MAIL_DOMAIN,), interval=3600, timeout=15,
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return discovery_facts(target.name, ctx)

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        record, problem = parsed_record(facts)
        if record is None:
            f.fail(problem or "no DMARC record")
            return f.verdict("")
        for note in record.warnings:
            f.ok(note)
        via = (f" (inherited from the organizational domain {facts['policy_domain']})"
               if facts.get("fallback") else "")
        return f.verdict(f"valid DMARC record{via}: {record.text[:200]}")


@register
class DmarcPolicy(Check):
    meta = CheckMeta(
        id="mail.dmarc.policy",
        needs=("dns.ns.authoritative",),
        title="DMARC policy enforces (quarantine/reject) and asks for reports",
        query="tags",
        verdicts="fail `p=none`; warn `sp=none`, `pct<100`, `t=y`; warn no `rua`",
        standards=("RFC 7489 6.3", "RFC 7489 6.6.4", "RFC 9989"),
        family="mail", applies_to=(TargetKind.MAIL_DOMAIN,), interval=3600, timeout=15,
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return discovery_facts(target.name, ctx)

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        record, problem = parsed_record(facts)
        if record is None:
            f.fail(f"no DMARC policy applies ({problem})")
            return f.verdict("")
        # A subdomain that inherits the organizational record gets `sp` (RFC 7489 6.6.3).
        applied = record.subdomain_policy if facts.get("fallback") else record.p
        tag = "sp" if facts.get("fallback") else "p"
        if applied == "none":
            f.fail(f"{tag}=none: receivers are asked to take no action (monitoring only)")
        elif not facts.get("fallback") and record.sp == "none":
            f.warn("sp=none: subdomains are not protected")
        if record.pct < 100:
            f.warn(f"pct={record.pct}: the policy applies to {record.pct}% of failing mail")
        if record.testing:
            f.warn("t=y: the policy is in test mode (RFC 9989)")
        if not record.rua:
            f.warn("no rua=: nobody receives aggregate reports")
        return f.verdict(f"{tag}={applied}, pct={record.pct}, reports to "
                         f"{', '.join(u.uri for u in record.rua)}")


@register
class DmarcExternalReport(Check):
    meta = CheckMeta(
        id="mail.dmarc.external-report",
        needs=("dns.ns.authoritative",),
        title="Report destinations outside the organization authorize the reports",
        query="`<domain>._report._dmarc.<dest>` for rua/ruf outside the org domain",
        verdicts="fail destination not authorized (RFC 7489 7.1)",
        standards=("RFC 7489 7.1",),
        family="mail", applies_to=(TargetKind.MAIL_DOMAIN,), interval=3600, timeout=15,
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        facts = discovery_facts(target.name, ctx)
        record, _problem = parsed_record(facts)
        destinations: list[dict[str, Any]] = []
        if record is not None and facts["policy_domain"]:
            for dest in dmarc_parser.external_destinations(facts["policy_domain"], record):
                item: dict[str, Any] = {"uri": dest.uri, "kind": dest.kind, "host": dest.host,
                                        "query_name": dest.query_name}
                try:
                    item.update(txt_texts(ctx, dest.query_name))
                except ProbeError as exc:
                    item["error"] = exc.reason
                destinations.append(item)
        facts["destinations"] = destinations
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        record, problem = parsed_record(facts)
        if record is None:
            return f.verdict(f"no report destinations to authorize ({problem}; see "
                             "mail.dmarc.record)")
        for dest in facts.get("destinations", []):
            if dest.get("error"):
                f.error(f"{dest['query_name']}: {dest['error']}")
            elif not dmarc_parser.is_report_authorization(dest.get("txt", [])):
                f.fail(f"{dest['kind']} destination {dest['host']} has not authorized reports "
                       f"for this domain: no v=DMARC1 record at {dest['query_name']} "
                       "(RFC 7489 7.1)")
            else:
                f.ok(f"{dest['host']} authorizes reports at {dest['query_name']}")
        count = len(facts.get("destinations", []))
        if count == 0:
            return f.verdict("all report destinations are inside the organizational domain")
        return f.verdict(f"{count} external destination(s), all authorized")
