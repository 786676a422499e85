"""web.* checks (per HTTPS endpoint of every service): certificate, TLS versions, the redirect
to HTTPS, HSTS, security headers and security.txt. The fetch helpers they share with the other
families are in checks/common.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from watchtower.compliance import http_headers, tls_criteria
from watchtower.compliance.criteria import Criterion
from watchtower.compliance.ncsc_tls import Level
from watchtower.errors import ProbeError
from watchtower.model import Findings, Status, Target, TargetKind, Verdict
from watchtower.net.tls import name_matches
from watchtower.parsers import ParseError, securitytxt
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext, observed_at
from watchtower.probe.registry import register

from .common import answer_problem, endpoint_host_port, fetch, header, origin
from .graded import GradedCheck

EXPIRY_WARN_DAYS = 14
HSTS_MIN_AGE = 31536000
SECURITY_TXT_CAP = 64 * 1024
MODERN_TLS = ("TLSv1.2", "TLSv1.3")


@register
class TlsCertificate(Check):
    meta = CheckMeta(
        id="web.tls.certificate",
        needs=("dns.ns.authoritative",),
        family="web",
        title="Certificate chain valid, name matches, not expiring",
        query="TLS handshake with SNI",
        verdicts="fail invalid chain, name mismatch, expired; warn < 14 days left",
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
        now = observed_at(facts)
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


# -- web.* -------------------------------------------------------------------------------------


@register
class TlsVersion(Check):
    """The light (six-hourly) view of the versions criterion of web.tls.ncsc: the same
    version probe (`TlsScanner.versions`, SSL 2.0 to TLS 1.3) and the same NCSC-NL table."""

    meta = CheckMeta(
        id="web.tls.version",
        needs=("dns.ns.authoritative",),
        family="web",
        title="No TLS version below 1.2 accepted",
        query="a ClientHello per version, SSL 2.0 to TLS 1.3 (the versions probe of web.tls.ncsc)",
        verdicts=(
            "fail any version below TLS 1.2 accepted (insufficient, NCSC-NL 2025-05 3.3.1); fail "
            "neither 1.2 nor 1.3"
        ),
        applies_to=(TargetKind.ENDPOINT,),
        interval=6 * 3600,
        timeout=20,
        standards=("RFC 8996 2-3", "RFC 9325 3.1.1", "NCSC-NL TLS guidelines 2025-05 3.3.1"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        host, port = endpoint_host_port(target)
        accepted = ctx.tls_scan.versions(host, port, deadline=ctx.deadline)
        return {"host": host, "port": port, "accepted": accepted}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        accepted = facts.get("accepted") or {}
        crit = tls_criteria.versions(accepted)
        weak = [v for v, lv in (crit.evidence.get("levels") or {}).items()
                if not Level(lv).passes]
        modern = [v for v in MODERN_TLS if accepted.get(v)]
        if weak:
            f.fail(f"accepts {', '.join(weak)} ({crit.level} by NCSC-NL {crit.section}; "
                   "deprecated by RFC 8996)")
        if not modern:
            f.fail("accepts neither TLSv1.2 nor TLSv1.3")
        return f.verdict(f"accepts only {', '.join(modern)}")


@register
class HttpsRedirect(Check):
    meta = CheckMeta(
        id="web.https.redirect",
        needs=("web.tls.certificate",),
        family="web",
        title="Plain HTTP redirects to HTTPS on the same host first",
        query="`http://` GET",
        verdicts="fail no redirect to https on the same host first",
        applies_to=(TargetKind.ENDPOINT,),
        interval=3600,
        timeout=15,
        standards=("RFC 6797 7.2", "RFC 9110 15.4"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        host, _ = endpoint_host_port(target)
        port = ctx.fleet.probe.http_port
        url = f"http://{host}" + ("" if port == 80 else f":{port}") + "/"
        try:
            fetched, _ = fetch(ctx, url, follow=False, keep=("location",))
        except ProbeError as exc:
            if exc.kind != "unreachable":
                raise
            return {"host": host, "url": url, "refused": exc.reason}
        return {"host": host, "url": url, "http": fetched}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        if facts.get("refused"):
            return Verdict(Status.OK, "plain HTTP not served: nothing to downgrade")
        http = facts.get("http") or {}
        status = http.get("status")
        location = header(http, "location")
        if status not in (301, 302, 303, 307, 308) or not location:
            f.fail(f"http:// answers {status} without a redirect to https")
            return f.verdict("")
        parts = urlsplit(location)
        host = facts["host"].lower()
        if parts.scheme == "" and parts.netloc == "":
            f.fail(f"redirects to {location} on plain HTTP, not to https")
        elif parts.scheme != "https":
            f.fail(f"redirects to {location}, not to https")
        elif (parts.hostname or "").lower() != host:
            f.fail(f"first redirect goes to {parts.hostname}, not https on {host} "
                   "(HSTS for this host is never set)")
        return f.verdict(f"{status} to {location}")


def parse_hsts(value: str) -> dict[str, Any]:
    """Strict-Transport-Security directives (RFC 6797 6.1); only the first header counts."""
    out: dict[str, Any] = {"max_age": None, "include_subdomains": False, "preload": False}
    first = value.split(",", maxsplit=1)[0]
    for part in first.split(";"):
        name, _, val = part.strip().partition("=")
        name = name.strip().lower()
        val = val.strip().strip('"')
        if name == "max-age":
            out["max_age"] = int(val) if val.isdigit() else None
        elif name == "includesubdomains":
            out["include_subdomains"] = True
        elif name == "preload":
            out["preload"] = True
    return out


@register
class Hsts(Check):
    meta = CheckMeta(
        id="web.hsts",
        needs=("web.tls.certificate",),
        family="web",
        title="Strict-Transport-Security with max-age of at least a year",
        query="Strict-Transport-Security",
        verdicts="warn missing or max-age < 31536000",
        applies_to=(TargetKind.ENDPOINT,),
        interval=3600,
        timeout=15,
        standards=("RFC 6797 6.1", "RFC 6797 11.2"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        fetched, _ = fetch(ctx, target.spec.url, follow=False,
                           keep=("strict-transport-security",))
        return {"url": target.spec.url, "https": fetched}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        https = facts.get("https") or {}
        if https.get("status") is None:
            f.fail(f"no HTTPS answer: {https.get('problem')}")
            return f.verdict("")
        value = header(https, "strict-transport-security")
        if value is None:
            f.warn("no Strict-Transport-Security header")
            return f.verdict("")
        hsts = parse_hsts(value)
        age = hsts["max_age"]
        if age is None:
            f.warn(f"Strict-Transport-Security without a valid max-age: {value!r}")
        elif age < HSTS_MIN_AGE:
            f.warn(f"HSTS max-age={age} is below {HSTS_MIN_AGE} (one year)")
        extras = [k for k in ("include_subdomains", "preload") if hsts[k]]
        return f.verdict(f"HSTS max-age={age}" + (f" ({', '.join(extras)})" if extras else ""))


@register
class SecurityHeaders(GradedCheck):
    """The application headers internet.nl tests, by internet.nl's rules
    (`watchtower.compliance.http_headers`), and HTTP compression over HTTPS: its GET offers
    every compression internet.nl offers (the client otherwise asks for identity), so it is
    its own GET, not web.hsts's."""

    meta = CheckMeta(
        id="web.headers",
        needs=("web.tls.certificate",),
        family="web",
        title="X-Frame-Options, X-Content-Type-Options, CSP, Referrer-Policy; no HTTP "
              "compression",
        query=(
            "X-Frame-Options, X-Content-Type-Options, Content-Security-Policy, Referrer-Policy, "
            "Content-Encoding of a GET offering every compression internet.nl offers"
        ),
        verdicts=(
            "internet.nl's rules (watchtower/compliance/http_headers.py): warn no nosniff, a CSP "
            "failing internet.nl's rules, a bad Referrer-Policy; info (ok) no framing protection, "
            "HTTP compression, a strict-origin policy"
        ),
        applies_to=(TargetKind.ENDPOINT,),
        interval=3600,
        timeout=15,
        standards=("Fetch Standard (X-Content-Type-Options)", "W3C Referrer Policy 3",
                   "CSP Level 3", "RFC 7034", "NCSC-NL TLS guidelines 2025-05 3.4.1"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        fetched, _ = fetch(ctx, target.spec.url, follow=False, keep=HEADERS,
                           headers={"Accept-Encoding": http_headers.ACCEPT_ENCODING})
        return {"url": target.spec.url, "https": fetched}

    def criteria(self, facts: Facts) -> list[Criterion]:
        https = facts.get("https") or {}
        if https.get("status") is None:
            return []  # nothing answered: no headers to grade
        host = urlsplit(facts.get("url") or https.get("url") or "").hostname or ""
        return http_headers.header_criteria(https.get("headers") or {}, host)

    def judge(self, facts: Facts) -> Verdict:
        https = facts.get("https") or {}
        if https.get("status") is None:
            f = Findings()
            f.fail(f"no HTTPS answer: {https.get('problem')}")
            return f.verdict("")
        return self.judged(facts, "framing, sniffing, CSP and referrer protection set")


HEADERS = ("x-content-type-options", "referrer-policy", "content-security-policy",
           "x-frame-options", "content-encoding")


@register
class SecurityTxt(Check):
    meta = CheckMeta(
        id="web.security-txt",
        needs=("web.tls.certificate",),
        family="web",
        title="security.txt with a Contact, not expired",
        query="`/.well-known/security.txt`",
        verdicts="warn missing, no Contact, expired Expires (RFC 9116)",
        applies_to=(TargetKind.ENDPOINT,),
        interval=6 * 3600,
        timeout=15,
        standards=("RFC 9116 2.5.3", "RFC 9116 2.5.5", "RFC 9116 3"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        url = origin(target.spec.url) + "/.well-known/security.txt"
        fetched, resp = fetch(ctx, url, max_body=SECURITY_TXT_CAP)
        facts: Facts = {"url": url, "fetch": fetched}
        if resp is not None and resp.status == 200 and not resp.truncated:
            try:
                facts["body"] = resp.body.decode("utf-8")
            except UnicodeDecodeError as exc:
                facts["body_problem"] = f"not valid UTF-8 at byte {exc.start}"
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        fetched = facts.get("fetch") or {}
        problem = answer_problem(fetched, "security.txt")
        if problem:
            f.warn(f"no security.txt ({problem})")
            return f.verdict("")
        if facts.get("body_problem"):
            f.warn(f"security.txt {facts['body_problem']}")
            return f.verdict("")
        if fetched.get("content_type") != "text/plain":
            f.warn(f"security.txt served as {fetched.get('content_type') or 'no type'}, "
                   "not text/plain (RFC 9116 3)")
        try:
            parsed = securitytxt.parse(facts.get("body", ""), now=observed_at(facts))
        except ParseError as exc:
            f.warn(f"security.txt unreadable: {exc.reason}")
            return f.verdict("")
        for problem in parsed.problems:
            f.warn(problem)
        expires = f", expires {parsed.expires:%Y-%m-%d}" if parsed.expires else ""
        return f.verdict(f"contact {', '.join(parsed.contact[:2])}{expires}")

