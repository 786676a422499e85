"""mail.mta-sts and mail.tls-rpt: the published transport-security policy and its reporting.

The MTA-STS policy is fetched exactly as a sending MTA would: HTTPS to `mta-sts.<domain>`, the
certificate verified, redirects not followed (RFC 8461 3.3), and checked against the MX set.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.parsers import ParseError, mtasts, tlsrpt
from watchtower.parsers.txt import select_records
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from ..common import failure
from .common import mx_facts, spec_of, txt_texts

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 3.3: senders may refuse larger policies


def policy_url(domain: str, ctx: ProbeContext) -> str:
    """The policy URL; its port follows the fleet's endpoint for the policy host (the lab
    serves HTTPS on a high port), 443 otherwise."""
    host = f"mta-sts.{domain}"
    for target in ctx.fleet.targets():
        if target.kind is TargetKind.ENDPOINT:
            parts = urlsplit(target.spec.url)
            if parts.hostname == host and parts.port not in (None, 443):
                return f"https://{host}:{parts.port}{POLICY_PATH}"
    return f"https://{host}{POLICY_PATH}"


@register
class MtaSts(Check):
    meta = CheckMeta(
        id="mail.mta-sts",
        needs=("dns.ns.authoritative",),
        family="mail",
        title="MTA-STS record and HTTPS policy valid and covering every MX",
        query=(
            "TXT `_mta-sts.<domain>` + HTTPS policy "
            "`https://mta-sts.<domain>/.well-known/mta-sts.txt`"
        ),
        verdicts=(
            "fail policy unreachable, redirect followed, not text/plain, bad keys, `mode=enforce` "
            "with an MX not matched by the policy; warn `mode=testing`/`none` (RFC 8461)"
        ),
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=3600,
        timeout=20,
        standards=("RFC 8461 3.1", "RFC 8461 3.2", "RFC 8461 3.3", "RFC 8461 4.1"),
    )

    def applies(self, target: Target) -> bool:
        if not super().applies(target):  # other kinds' names need not be domain names
            return False
        spec = spec_of(target)
        return spec.sending and spec.mta_sts

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        domain = target.name
        record = txt_texts(ctx, f"_mta-sts.{domain}")
        record["sts"] = select_records(record["txt"], "v=STSv1", terminators="; \t",
                                       case_sensitive=True)
        facts: dict[str, Any] = {"domain": domain, "record": record}
        mx = mx_facts(ctx, domain)
        facts["mx"] = [h["name"] for h in mx["hosts"]]
        url = policy_url(domain, ctx)
        policy: dict[str, Any] = {"url": url}
        try:
            resp = ctx.get(url, follow_redirects=False, max_body=MAX_POLICY_BYTES + 1)
            policy.update(status=resp.status, content_type=resp.content_type,
                          location=resp.headers.get("location"),
                          body=resp.body.decode("utf-8", errors="replace")[:MAX_POLICY_BYTES],
                          truncated=resp.truncated)
        except ProbeError as exc:
            policy.update(failure(exc))
        facts["policy"] = policy
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        record = facts["record"]
        if not record["sts"]:
            f.fail(f"no MTA-STS record at {record['name']} (RFC 8461 3.1)")
        elif len(record["sts"]) > 1:
            f.fail(f"{len(record['sts'])} MTA-STS records: senders treat the domain as "
                   "having none (RFC 8461 3.1)")
        else:
            try:
                mtasts.parse_record(record["sts"][0])
            except ParseError as exc:
                f.fail(f"MTA-STS record invalid: {exc}")
        policy = facts["policy"]
        parsed = _policy(policy, f)
        if parsed is not None:
            if parsed.mode == "enforce":
                missing = parsed.unmatched(facts["mx"])
                if missing:
                    f.fail(f"mode enforce but MX {', '.join(missing)} not matched by the policy "
                           f"mx lines ({', '.join(parsed.mx)}): mail to it would bounce "
                           "(RFC 8461 4.1)")
            else:
                f.warn(f"mode {parsed.mode}: senders do not enforce TLS")
        summary = (f"mode {parsed.mode}, max_age {parsed.max_age}, covers "
                   f"{', '.join(facts['mx'])}") if parsed else ""
        return f.verdict(summary)


def _policy(policy: dict[str, Any], f: Findings) -> mtasts.MtaStsPolicy | None:
    if policy.get("error"):
        f.fail(f"policy unreachable at {policy['url']}: {policy['error']}")
        return None
    status = policy["status"]
    if 300 <= status < 400:
        f.fail(f"policy URL answered {status} redirect to {policy.get('location')}; senders "
               "must not follow redirects (RFC 8461 3.3)")
        return None
    if status != 200:
        f.fail(f"policy URL answered HTTP {status} (RFC 8461 3.3)")
        return None
    if policy.get("content_type") != "text/plain":
        f.fail(f"policy served as {policy.get('content_type') or 'no media type'}, not "
               "text/plain (RFC 8461 3.2)")
        return None
    if policy.get("truncated"):
        f.fail(f"policy larger than {MAX_POLICY_BYTES} bytes")
        return None
    try:
        return mtasts.parse_policy(policy["body"])
    except ParseError as exc:
        f.fail(f"policy invalid: {exc}")
        return None


@register
class TlsRpt(Check):
    meta = CheckMeta(
        id="mail.tls-rpt",
        needs=("dns.ns.authoritative",),
        family="mail",
        title="SMTP TLS reporting record with a usable rua",
        query="TXT `_smtp._tls.<domain>`",
        verdicts="warn missing; fail malformed or no valid `rua` (RFC 8460)",
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=3600,
        timeout=15,
        standards=("RFC 8460 3",),
    )

    def applies(self, target: Target) -> bool:
        return super().applies(target) and spec_of(target).sending

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        facts = txt_texts(ctx, f"_smtp._tls.{target.name}")
        facts["tlsrpt"] = select_records(facts["txt"], "v=TLSRPTv1", terminators="; \t",
                                         case_sensitive=True)
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        records = facts["tlsrpt"]
        if not records:
            f.warn(f"no TLS-RPT record at {facts['name']}: TLS failures go unreported")
            return f.verdict("")
        if len(records) > 1:
            f.fail(f"{len(records)} TLS-RPT records: reporters use none (RFC 8460 3)")
            return f.verdict("")
        try:
            record = tlsrpt.parse(records[0])
        except ParseError as exc:
            f.fail(f"TLS-RPT record invalid: {exc}")
            return f.verdict("")
        if not record.valid_rua:
            f.fail("no rua with a mailto: or https: URI (RFC 8460 3)")
        return f.verdict("reports to " + ", ".join(u.uri for u in record.valid_rua))
