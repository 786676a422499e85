"""mail.smtp.*, mail.open-relay: what each MX shows a sending MTA on the SMTP port.

One STARTTLS dialogue per (MX, address) per sweep (the sweep's `ctx.smtp`, memoised) feeds
both the protocol check and the certificate check, and the DANE check reuses the same chain.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from watchtower.compliance import tls_criteria
from watchtower.compliance.ncsc_tls import Level
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.tls import name_matches
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext, observed_at
from watchtower.probe.registry import register

from .common import mx_facts, null_mx, smtp_endpoints, smtp_port, spec_of

EXPIRY_WARN_DAYS = 14
_OLD_TLS = {"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"}


def starttls_facts(target: Target, ctx: ProbeContext) -> Facts:
    """Dial every MX address, EHLO, STARTTLS, handshake; the chain is kept for later checks."""
    mx = mx_facts(ctx, target.name)
    port = smtp_port(ctx)
    endpoints: list[dict[str, Any]] = []
    for host, address in smtp_endpoints(mx):
        outcome = ctx.smtp.starttls(host, address, port, deadline=ctx.deadline)
        item = outcome.evidence()
        if outcome.tls is not None:
            item["chain"] = [c.evidence() for c in outcome.tls.chain]
            item["chain_der"] = [c.der.hex() for c in outcome.tls.chain]
        endpoints.append(item)
    return {"domain": target.name, "null_mx": null_mx(mx), "mx": [h["name"] for h in mx["hosts"]],
            "mta_sts": spec_of(target).mta_sts, "endpoints": endpoints}


def _no_endpoints(facts: Facts, f: Findings) -> Verdict | None:
    if facts["endpoints"]:
        return None
    if facts.get("null_mx"):
        return f.verdict("null MX: no mail server to probe")
    f.error("no MX address to probe (see mail.mx)")
    return f.verdict("")


def _who(ep: dict[str, Any]) -> str:
    return f"{ep['mx']} ({ep['address']}:{ep['port']})"


@register
class SmtpStartTls(Check):
    meta = CheckMeta(
        id="mail.smtp.starttls",
        family="mail",
        title="Every MX greets with 220, offers STARTTLS and negotiates TLS 1.2 or newer",
        query=(
            "connect port 25 of each MX, EHLO, STARTTLS; the versions probe of mail.starttls.ncsc"
        ),
        verdicts=(
            "fail no 220 banner, STARTTLS not offered, handshake fails, TLS < 1.2 negotiated or "
            "accepted (SSL 2.0/3.0, TLS 1.0/1.1: insufficient, NCSC-NL 2025-05 3.3.1)"
        ),
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=3600,
        timeout=30,
        standards=("RFC 5321 4.2", "RFC 3207 4", "RFC 8996", "RFC 7525 3.1.1"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return starttls_facts(target, ctx)

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        early = _no_endpoints(facts, f)
        if early is not None:
            return early
        versions = set()
        for ep in facts["endpoints"]:
            who, kind = _who(ep), ep.get("error_kind")
            if ep.get("tls"):
                version = ep["tls"].get("version")
                versions.add(version)
                if version in _OLD_TLS:
                    f.fail(f"{who} negotiated {version}; TLS 1.2 or newer is required "
                           "(RFC 8996)")
                old = [v for v in ep.get("legacy_versions", []) if v in _OLD_TLS]
                if old:  # graded as the versions criterion of mail.starttls.ncsc is
                    level = tls_criteria.versions(dict.fromkeys(old, True)).level
                    f.fail(f"{who} still accepts {', '.join(old)} ({level} by NCSC-NL "
                           "3.3.1; RFC 8996)")
            elif kind == "banner":
                f.fail(f"{who}: no 220 banner ({ep.get('banner') or ep.get('error')})")
            elif kind == "protocol":
                f.fail(f"{who}: not a valid SMTP dialogue: {ep.get('error')}")
            elif kind == "ehlo":
                f.fail(f"{who}: EHLO refused ({ep.get('error')})")
            elif kind == "no-starttls":
                f.fail(f"{who} does not offer STARTTLS: mail travels in clear text (RFC 3207)")
            elif kind in ("starttls", "tls"):
                f.fail(f"{who}: STARTTLS failed: {ep.get('error')}")
            else:
                f.error(f"{who}: {ep.get('error')}")
        shown = ", ".join(sorted(v for v in versions if v))
        return f.verdict(f"{len(facts['endpoints'])} MX endpoint(s) offer STARTTLS ({shown})")


@register
class SmtpCertificate(Check):
    meta = CheckMeta(
        id="mail.smtp.certificate",
        family="mail",
        title="The certificate each MX serves in STARTTLS is valid for its name",
        query="certificate seen in STARTTLS",
        verdicts=(
            "fail expired or name mismatch with the MX host (required under MTA-STS), a key "
            "insufficient by NCSC-NL 3.3.2 (RSA < 2048); warn < 14 days left, a phase-out key (RSA"
            " 2048-3071, secp224r1)"
        ),
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=3600,
        timeout=30,
        standards=("RFC 8461 4.2", "RFC 6125 6", "RFC 5280 6", "RFC 8301"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        facts = starttls_facts(target, ctx)
        for ep in facts["endpoints"]:
            ep.pop("chain_der", None)
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        early = _no_endpoints(facts, f)
        if early is not None:
            return early
        now = observed_at(facts)
        shown = []
        for ep in facts["endpoints"]:
            who = _who(ep)
            chain = ep.get("chain") or []
            if not chain:
                f.error(f"{who}: no certificate seen ({ep.get('error') or 'no TLS'}; see "
                        "mail.smtp.starttls)")
                continue
            leaf = chain[0]
            not_after = dt.datetime.fromisoformat(leaf["not_after"])
            days = (not_after - now).total_seconds() / 86400
            if not any(name_matches(n, ep["mx"]) for n in leaf["names"]):
                f.fail(f"{who}: certificate names {', '.join(leaf['names'][:4])} do not cover "
                       f"{ep['mx']} (required under MTA-STS, RFC 8461 4.2)")
            if days < 0:
                f.fail(f"{who}: certificate expired on {not_after:%Y-%m-%d}")
            elif days < EXPIRY_WARN_DAYS:
                f.warn(f"{who}: certificate expires in {days:.0f} days")
            tls = ep.get("tls") or {}
            if not tls.get("verified"):
                message = f"{who}: chain not trusted ({tls.get('verify_error')})"
                if facts.get("mta_sts"):
                    f.fail(message + "; MTA-STS requires a trusted chain (RFC 8461 4.2)")
                else:
                    f.warn(message)
            keys = tls_criteria.cert_pubkey(chain)  # graded as mail.starttls.ncsc grades it
            if keys.level is Level.INSUFFICIENT:
                f.fail(f"{who}: {keys.detail} (NCSC-NL {keys.section})")
            elif keys.level is Level.PHASE_OUT:
                f.warn(f"{who}: {keys.detail} (NCSC-NL {keys.section})")
            shown.append(f"{ep['mx']} until {not_after:%Y-%m-%d}")
        return f.verdict("valid: " + ", ".join(shown))


@register
class OpenRelay(Check):
    meta = CheckMeta(
        id="mail.open-relay",
        family="mail",
        title="No MX relays mail between two outside domains",
        query="MAIL FROM outside, RCPT TO outside, expect 5xx, never DATA",
        verdicts="fail if the relay is accepted",
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=86400,
        timeout=30,
        standards=("RFC 5321 3.6.2", "RFC 2505 2"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        mx = mx_facts(ctx, target.name)
        port = smtp_port(ctx)
        endpoints = [ctx.smtp.relay(host, address, port, deadline=ctx.deadline).evidence()
                     for host, address in smtp_endpoints(mx)]
        return {"domain": target.name, "null_mx": null_mx(mx), "endpoints": endpoints}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        early = _no_endpoints(facts, f)
        if early is not None:
            return early
        for ep in facts["endpoints"]:
            who = _who(ep)
            rcpt = ep.get("rcpt_code")
            mail = ep.get("mail_code")
            if rcpt is not None and 200 <= rcpt < 300:
                f.fail(f"{who} is an open relay: RCPT TO:<{ep['rcpt_to']}> from "
                       f"<{ep['mail_from']}> answered {ep.get('rcpt_reply')}")
            elif rcpt is not None and 400 <= rcpt < 500:
                f.warn(f"{who} deferred the relay attempt ({ep.get('rcpt_reply')}): relay "
                       "status unknown")
            elif rcpt is not None or (mail is not None and mail >= 500):
                f.ok(f"{who} refused to relay ({ep.get('rcpt_reply') or ep.get('mail_reply')})")
            elif mail is not None and 400 <= mail < 500:
                f.warn(f"{who} deferred MAIL FROM ({ep.get('mail_reply')}): relay status "
                       "unknown")
            else:
                f.error(f"{who}: {ep.get('error') or 'no answer to the relay attempt'}")
        return f.verdict(f"{len(facts['endpoints'])} MX endpoint(s) refuse to relay")
