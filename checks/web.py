"""web.* checks (per HTTPS endpoint of every service)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from watchtower.checks_api import Check, CheckMeta, Facts, ProbeContext
from watchtower.model import Findings, Status, Target, TargetKind, Verdict, utcnow
from watchtower.net.tls import name_matches
from watchtower.plugins import register

EXPIRY_WARN_DAYS = 14


def endpoint_host_port(target: Target) -> tuple[str, int]:
    parts = urlsplit(target.spec.url)
    return parts.hostname or "", parts.port or 443


def now_of(facts: Facts) -> dt.datetime:
    """Judgements read "now" from the facts when a fixture pins it, else the clock."""
    value = facts.get("now")
    return dt.datetime.fromisoformat(value) if value else utcnow()


@register
class TlsCertificate(Check):
    meta = CheckMeta(
        id="web.tls.certificate",
        family="web",
        title="Certificate chain valid, name matches, not expiring",
        applies_to=(TargetKind.ENDPOINT,),
        interval=3600,
        timeout=15,
        standards=("RFC 5280 6", "RFC 6125 6", "CA/B Forum BR"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        host, port = endpoint_host_port(target)
        tls = ctx.tls_probe(host, port)
        leaf = tls.leaf
        facts: dict[str, Any] = {"host": host, "port": port, **tls.evidence()}
        facts.pop("address", None)
        if leaf is not None:
            facts["leaf"] = leaf.evidence()
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        leaf = facts.get("leaf")
        if leaf is None:
            f.fail("no certificate was served")
            return f.verdict("")
        now = now_of(facts)
        not_after = dt.datetime.fromisoformat(leaf["not_after"])
        not_before = dt.datetime.fromisoformat(leaf["not_before"])
        days_left = (not_after - now).total_seconds() / 86400
        host = facts["host"]
        if not any(name_matches(n, host) for n in leaf["names"]):
            f.fail(f"certificate names {', '.join(leaf['names'][:5])} do not cover {host}")
        if days_left < 0:
            f.fail(f"certificate expired on {not_after:%Y-%m-%d}")
        elif now < not_before:
            f.fail(f"certificate not valid before {not_before:%Y-%m-%d}")
        elif days_left < EXPIRY_WARN_DAYS:
            f.warn(f"certificate expires in {days_left:.0f} days ({not_after:%Y-%m-%d})")
        if not facts.get("verified") and f.status is not Status.FAIL:
            f.fail(f"certificate chain not trusted: {facts.get('verify_error')}")
        return f.verdict(f"valid until {not_after:%Y-%m-%d} ({days_left:.0f} days), "
                         f"issued by {leaf['issuer']}")
