"""Plain web endpoints for the web.* and mail.mta-sts checks.

- `StaticSiteApp`: any HTTPS site of the fleet, with the security headers internet.nl looks for
  and an RFC 9116 security.txt.
- `MtaStsPolicyApp`: the RFC 8461 policy host `mta-sts.<domain>`.
- `HttpRedirectApp`: the plain-HTTP side of a host, which should only send visitors to HTTPS on
  the same host.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from watchtower.lab.apps.common import (
    Fault,
    LabApp,
    Request,
    Response,
    html_response,
    method_not_allowed,
    redirect,
    text_response,
)

HSTS_MAX_AGE = 31536000
WEAK_HSTS_MAX_AGE = 86400
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class StaticSiteApp(LabApp):
    """`/` and `/.well-known/security.txt` with good headers on every answer.

    `hsts=False` or `security_txt=False` configure a site that lacks them for good (the fleet's
    declared state); the faults break a site that should have them.
    """

    FAULTS: ClassVar[tuple[Fault, ...]] = (
        Fault("no-hsts", "no Strict-Transport-Security header"),
        Fault("weak-hsts", f"Strict-Transport-Security max-age={WEAK_HSTS_MAX_AGE}"),
        Fault("no-headers", "no X-Content-Type-Options, Referrer-Policy or CSP"),
        Fault("security-txt-missing", "/.well-known/security.txt answers 404"),
        Fault("security-txt-expired", "security.txt Expires lies 30 days in the past"),
        Fault("security-txt-no-contact", "security.txt has no Contact field"),
    )

    def __init__(
        self,
        host: str,
        hsts: bool = True,
        security_txt: bool = True,
        *,
        contact: str | None = None,
        title: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.host = host.lower().rstrip(".")
        self.hsts = hsts
        self.security_txt = security_txt
        self.contact = contact or f"mailto:security@{self.host}"
        self.title = title or self.host
        self.hosts = (self.host,)

    def security_headers(self, faults: frozenset[str]) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        if self.hsts and "no-hsts" not in faults:
            max_age = WEAK_HSTS_MAX_AGE if "weak-hsts" in faults else HSTS_MAX_AGE
            headers.append(("Strict-Transport-Security", f"max-age={max_age}; includeSubDomains"))
        if "no-headers" not in faults:
            headers += [
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "strict-origin-when-cross-origin"),
                ("Content-Security-Policy", CSP),
                ("X-Frame-Options", "DENY"),
            ]
        return headers

    def security_txt_body(self, req: Request, faults: frozenset[str],
                          now: datetime | None = None) -> str:
        """RFC 9116: Contact and Expires are required; Expires under a year ahead."""
        now = now or datetime.now(UTC)
        if "security-txt-expired" in faults:
            expires = now - timedelta(days=30)
        else:
            expires = now + timedelta(days=360)
        lines = []
        if "security-txt-no-contact" not in faults:
            lines.append(f"Contact: {self.contact}")
        lines += [
            f"Expires: {_stamp(expires)}",
            "Preferred-Languages: en",
            f"Canonical: {req.base_url(self.host)}/.well-known/security.txt",
        ]
        return "\n".join(lines) + "\n"

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        headers = self.security_headers(faults)
        if req.method not in ("GET", "HEAD"):
            resp = method_not_allowed()
        elif req.path in ("/", "/index.html"):
            resp = html_response(
                f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{self.title}</title></head><body><h1>{self.title}</h1></body></html>\n")
        elif req.path == "/.well-known/security.txt":
            if not self.security_txt or "security-txt-missing" in faults:
                resp = text_response("Not Found\n", 404)
            else:
                resp = text_response(self.security_txt_body(req, faults))
        else:
            resp = text_response("Not Found\n", 404)
        resp.headers += headers
        return resp


class MtaStsPolicyApp(LabApp):
    """`https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 section 3.2)."""

    POLICY_PATH = "/.well-known/mta-sts.txt"
    MOVED_PATH = "/policy/mta-sts.txt"

    FAULTS: ClassVar[tuple[Fault, ...]] = (
        Fault("policy-missing", "the policy answers 404"),
        Fault("policy-redirect", "the policy answers 301 to another path (which serves it)"),
        Fault("policy-wrong-content-type", "the policy is served as text/html"),
        Fault("policy-bad-syntax", "a line without colon and a non-numeric max_age"),
        Fault("policy-testing", "mode: testing instead of the configured mode"),
        Fault("policy-mx-mismatch", "the policy's mx pattern matches none of the real MX hosts"),
    )

    def __init__(
        self,
        domain: str,
        mx_patterns: Sequence[str],
        mode: str = "enforce",
        max_age: int = 604800,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if mode not in ("enforce", "testing", "none"):
            raise ValueError(f"MTA-STS mode must be enforce, testing or none, not {mode!r}")
        self.domain = domain.lower().rstrip(".")
        self.mx_patterns = list(mx_patterns)
        self.mode = mode
        self.max_age = max_age
        self.hosts = (f"mta-sts.{self.domain}",)

    def policy_text(self, faults: frozenset[str]) -> str:
        """The policy, CRLF-terminated lines as the RFC's examples show."""
        mode = "testing" if "policy-testing" in faults else self.mode
        patterns = self.mx_patterns
        if "policy-mx-mismatch" in faults:
            patterns = [f"mx.not-{self.domain}.invalid"]
        if "policy-bad-syntax" in faults:
            lines = ["version: STSv1", f"mode: {mode}", *(f"mx {p}" for p in patterns),
                     "max_age: one-week"]
        else:
            lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {p}" for p in patterns),
                     f"max_age: {self.max_age}"]
        return "\r\n".join(lines) + "\r\n"

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        if req.method not in ("GET", "HEAD"):
            return method_not_allowed()
        if req.path == self.POLICY_PATH:
            if "policy-missing" in faults:
                return text_response("Not Found\n", 404)
            if "policy-redirect" in faults:
                return redirect(req.base_url(self.hosts[0]) + self.MOVED_PATH, 301)
        elif req.path != self.MOVED_PATH:
            return text_response("Not Found\n", 404)
        content_type = "text/plain"
        if "policy-wrong-content-type" in faults:
            content_type = "text/html; charset=utf-8"
        return text_response(self.policy_text(faults), content_type=content_type)


class HttpRedirectApp(LabApp):
    """The `http://` side of a host: 301 to the same host and path over HTTPS.

    `https_port` is the port the lab's HTTPS listener uses (left out of the URL when 443);
    `other_host` is where `redirect-other-host` sends visitors (default `www.<host>`).
    """

    FAULTS: ClassVar[tuple[Fault, ...]] = (
        Fault("no-redirect", "serves the page over plain HTTP with 200"),
        Fault("redirect-other-host", "redirects to HTTPS on another host first"),
    )

    def __init__(self, https_port: int = 443, other_host: str | None = None, **common: Any
                 ) -> None:
        super().__init__(**common)
        self.https_port = https_port
        self.other_host = other_host

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        if "no-redirect" in faults:
            return html_response("<!DOCTYPE html><html><body>plain http</body></html>\n")
        host = req.host
        if "redirect-other-host" in faults:
            host = self.other_host or f"www.{req.host}"
        port = "" if self.https_port == 443 else f":{self.https_port}"
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        return redirect(f"https://{host}{port}{req.relative_url()}", 301)
