"""mail.parked: a domain that sends no mail says so in all three places receivers look.

M3AAWG's parked-domain practice: `v=spf1 -all` (nobody may send), DMARC `p=reject` (reject
what fails), and a null MX (RFC 7505: accept nothing). Missing any one leaves the name open
to spoofing or to backscatter.
"""

from __future__ import annotations

from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.parsers import ParseError
from watchtower.parsers import spf as spf_parser
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import mx_facts, spec_of, txt_texts
from .dmarc import discovery_facts, parsed_record


@register
class Parked(Check):
    meta = CheckMeta(
        id="mail.parked",
        needs=("dns.ns.authoritative",),
        family="mail",
        title="Non-sending domain publishes SPF -all, DMARC reject and a null MX",
        query="domains marked non-sending",
        verdicts="fail unless `v=spf1 -all`, DMARC `p=reject`, null MX",
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=3600,
        timeout=15,
        standards=("RFC 7505 3", "RFC 7208 5.1", "RFC 7489 6.3", "M3AAWG parked domains BCP"),
    )

    def applies(self, target: Target) -> bool:
        return super().applies(target) and not spec_of(target).sending

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        spf = txt_texts(ctx, target.name)
        mx = mx_facts(ctx, target.name)
        return {"domain": target.name, "spf": spf_parser.select_spf(spf["txt"]),
                "dmarc": discovery_facts(target.name, ctx),
                "mx": [r["exchange"] for r in mx["records"]]}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        spf = facts["spf"]
        if len(spf) != 1 or not _reject_all(spf[0]):
            shown = " | ".join(spf) if spf else "none"
            f.fail(f"SPF must be exactly 'v=spf1 -all' (found: {shown})")
        record, problem = parsed_record(facts["dmarc"])
        if record is None:
            f.fail(f"DMARC must be p=reject ({problem})")
        else:
            policy = record.subdomain_policy if facts["dmarc"].get("fallback") else record.p
            if policy != "reject":
                f.fail(f"DMARC policy is {policy}, must be reject")
        if facts["mx"] != ["."]:
            f.fail("no null MX '0 .' (found: " + (", ".join(facts["mx"]) or "none") + ")")
        return f.verdict("parked: SPF -all, DMARC reject, null MX")


def _reject_all(text: str) -> bool:
    """Only `-all`: no mechanism that could authorize a sender, no redirect."""
    try:
        record = spf_parser.parse(text)
    except ParseError:
        return False
    mechs = record.mechanisms
    return (len(mechs) == 1 and mechs[0].name == "all" and mechs[0].qualifier == "-"
            and record.redirect is None)
