"""mail.mx: the MX set is usable (or an explicit null MX says the domain takes no mail)."""

from __future__ import annotations

from typing import Any

from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import is_sending, mx_facts


@register
class MxSanity(Check):
    meta = CheckMeta(
        id="mail.mx",
        needs=("dns.ns.authoritative",),
        family="mail",
        title="MX records point at host names with addresses, or a null MX",
        query="MX, A/AAAA of each",
        verdicts=(
            "fail no MX and no null MX on a sending domain; fail MX is CNAME or IP literal or has "
            "no address; warn null MX mixed with others (RFC 7505, RFC 2181 10.3)"
        ),
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=3600,
        timeout=20,
        standards=("RFC 5321 5.1", "RFC 7505 3", "RFC 2181 10.3"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        facts = mx_facts(ctx, target.name)
        facts["sending"] = is_sending(target)
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        records = facts["records"]
        null = [r for r in records if r["exchange"] == "."]
        if facts.get("rcode") == "NXDOMAIN":
            f.fail(f"{facts['domain']} does not exist (NXDOMAIN)")
            return f.verdict("")
        if not records:
            if facts.get("sending", True):
                f.fail("no MX and no null MX: senders fall back to the A record "
                       "(RFC 5321 5.1); publish MX records")
            else:
                f.warn("no MX on a non-sending domain: publish a null MX '0 .' (RFC 7505)")
            return f.verdict("")
        if null:
            if len(records) > 1:
                f.warn("null MX mixed with other MX records: the null MX must be the only one "
                       "(RFC 7505 3)")
            elif null[0]["preference"] != 0:
                f.warn("null MX should have preference 0 (RFC 7505 3)")
            if len(records) == 1:
                return f.verdict("null MX: the domain accepts no mail (RFC 7505)")
        for host in facts["hosts"]:
            _judge_host(f, host)
        names = ", ".join(h["name"] for h in facts["hosts"])
        return f.verdict(f"{len(facts['hosts'])} MX host(s) with addresses: {names}")


def _judge_host(f: Findings, host: dict[str, Any]) -> None:
    """One MX target: a host name (not an IP literal, not a CNAME) with an address."""
    name = host["name"]
    if host.get("ip_literal"):
        f.fail(f"MX {name} is an IP address, not a host name (RFC 5321 5.1)")
        return
    if host.get("cname"):
        f.fail(f"MX {name} is a CNAME (to {host['cname'][-1]}); MX must name the host "
               "itself (RFC 2181 10.3)")
    if not host["addresses"] and host.get("problem"):
        f.error(f"MX {name}: address lookup failed ({host['problem']})")
    elif not host["addresses"]:
        f.fail(f"MX {name} has no address (no A or AAAA)")
