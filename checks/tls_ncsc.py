"""web.tls.ncsc and mail.starttls.ncsc: every HTTPS endpoint and every MX graded criterion by
criterion by the NCSC-NL TLS guidelines (2025-05), as internet.nl grades them.

A full scan is heavy (~170 handshakes): these checks run daily, and the scan of one server is
shared by every check of the sweep that reads it (the sweep's `ctx.tls_scan`). The
five-minute and hourly checks (web.tls.certificate, web.tls.version, mail.smtp.*) stay light;
they grade the facts they share with these checks by the same tables.

Facts: the scan (`TlsScan.evidence()`) and the verifying handshake of `watchtower.net.tls`
(for the MX, the STARTTLS dialogue the mail.smtp.* checks share). The criteria are computed
from the facts by `watchtower.compliance.tls_criteria` in `judge` and again in `evidence`, so
the stored evidence carries each criterion's guideline level and internet.nl status.
"""

from __future__ import annotations

from typing import Any

from watchtower.compliance import criteria
from watchtower.compliance import tls_criteria as tc
from watchtower.compliance.criteria import Criterion
from watchtower.compliance.frameworks import MAIL_TLS, WEB_TLS
from watchtower.compliance.ncsc_tls import worst_cipher_first
from watchtower.errors import ProbeError
from watchtower.model import Target, TargetKind, Verdict
from watchtower.probe.api import CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import endpoint_host_port
from .graded import GradedCheck
from .mail.common import mx_facts, null_mx, smtp_port, spec_of

DAILY = 86400.0
STANDARDS = ("NCSC-NL TLS guidelines 2025-05", "RFC 9325", "RFC 8996", "RFC 7919")
@register
class WebTlsNcsc(GradedCheck):
    meta = CheckMeta(
        id=WEB_TLS,
        needs=("dns.ns.authoritative",),
        family="web",
        title="HTTPS graded by the NCSC-NL TLS guidelines, criterion by criterion",
        query=(
            "daily: a full sslyze scan (versions; suites of the highest version below 1.3 and of "
            "1.3; key-exchange groups; cipher order; key-exchange hash; compression; "
            "renegotiation; 0-RTT; Extended Master Secret; OCSP staple) and the verifying "
            "handshake"
        ),
        verdicts=(
            "each internet.nl web TLS test as a criterion with its NCSC-NL level "
            "(docs/tls-criteria.md): fail a required test failed (insufficient), warn a phase-out "
            "setting or a recommended test failed; info (optional) tests never fail"
        ),
        applies_to=(TargetKind.ENDPOINT,),
        interval=DAILY,
        timeout=180,
        standards=STANDARDS,
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        host, port = endpoint_host_port(target)
        scan = ctx.tls_scan.scan(host, port, deadline=ctx.deadline, web=True,
                                 cipher_rank=worst_cipher_first)
        facts: Facts = {"host": host, "port": port, "scan": scan.evidence(), "tls": None}
        if any(scan.versions.values()):
            try:
                facts["tls"] = ctx.tls_probe(host, port, address=scan.address).evidence()
            except ProbeError as exc:
                if exc.kind != "tls":
                    raise
                facts["tls_error"] = exc.reason
        return facts

    def criteria(self, facts: Facts) -> list[Criterion]:
        scan = facts.get("scan") or {}
        return [tc.https_exists(scan), *tc.endpoint_criteria(
            scan, _trust(facts), facts["host"], web=True)]

    def judge(self, facts: Facts) -> Verdict:
        return self.judged(facts, f"{facts['host']}:{facts['port']} meets every NCSC-NL "
                                  "criterion internet.nl requires")


def _trust(facts: Facts) -> dict[str, Any] | None:
    """Trust comes from the verifying handshake (the one web.tls.certificate makes); when
    that handshake failed for another reason (a DH group our OpenSSL refuses), trust could
    not be tested, which is said, not counted as a failure."""
    if facts.get("tls") is not None:
        return dict(facts["tls"])
    if facts.get("tls_error"):
        return {"verified": None, "verify_error": facts["tls_error"]}
    return None


@register
class MailStartTlsNcsc(GradedCheck):
    meta = CheckMeta(
        id=MAIL_TLS,
        needs=("dns.ns.authoritative",),
        family="mail",
        title="Every MX's STARTTLS graded by the NCSC-NL TLS guidelines, criterion by criterion",
        query=(
            "daily: every MX (one address each) after STARTTLS, a full sslyze scan plus the shared"
            " STARTTLS dialogue"
        ),
        verdicts=(
            "each internet.nl mail TLS test as a criterion (docs/tls-criteria.md): fail a required"
            " test failed (STARTTLS missing; insufficient versions, suites, key-exchange groups, "
            "compression, insecure renegotiation, certificate key or signature), warn a phase-out "
            "setting or a recommended test failed (SHA-1/SHA-224 for the key exchange)"
        ),
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=DAILY,
        timeout=300,
        standards=(*STANDARDS, "RFC 3207"),
    )

    def applies(self, target: Target) -> bool:
        return super().applies(target) and spec_of(target).sending

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        mx = mx_facts(ctx, target.name)
        port = smtp_port(ctx)
        servers = []
        for host in mx["hosts"]:
            for address in host["addresses"][:1]:  # one address per MX, as internet.nl does
                servers.append(_mx_server(ctx, host["name"], address, port))
        return {"domain": target.name, "null_mx": null_mx(mx), "servers": servers}

    def criteria(self, facts: Facts) -> list[Criterion]:
        servers = facts.get("servers") or []
        if not servers:
            why = "null MX: the domain receives no mail" if facts.get("null_mx") else \
                "no MX host with an address"
            return [criteria.not_tested("starttls_exists", why)]
        per_server = {}
        for server in servers:
            crits = [tc.starttls_exists(server)]
            if server.get("scan"):
                crits += tc.endpoint_criteria(server["scan"], _trust(server), server["mx"],
                                              web=False)
            per_server[server["mx"]] = crits
        return criteria.combine(per_server)

    def judge(self, facts: Facts) -> Verdict:
        n = len(facts.get("servers") or [])
        return self.judged(facts, f"{n} MX meet every NCSC-NL criterion internet.nl requires"
                           if n else "no MX to grade")


def _mx_server(ctx: ProbeContext, mx: str, address: str, port: int) -> dict[str, Any]:
    """The shared STARTTLS dialogue (trust, certificate) and the full scan of one MX."""
    outcome = ctx.smtp.starttls(mx, address, port, deadline=ctx.deadline)
    server: dict[str, Any] = {"mx": mx, "address": address, "port": port,
                              "starttls_offered": outcome.starttls_offered,
                              "error": outcome.error, "error_kind": outcome.error_kind,
                              "tls": outcome.tls.evidence() if outcome.tls else None}
    if outcome.tls is None and not (outcome.starttls_offered and outcome.error_kind == "tls"):
        return server  # no STARTTLS to scan; a handshake our OpenSSL refuses is scanned
    if outcome.tls is None:
        server["tls_error"] = outcome.error
    try:
        server["scan"] = ctx.tls_scan.scan(mx, port, deadline=ctx.deadline, address=address,
                                           starttls="smtp", web=False,
                                           cipher_rank=worst_cipher_first).evidence()
    except ProbeError as exc:
        server["scan_error"] = exc.reason
    return server
