"""Static sites (security headers, security.txt), the MTA-STS policy host, HTTP->HTTPS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from watchtower.lab.apps import HttpRedirectApp, MtaStsPolicyApp, StaticSiteApp

from .wsgi_client import Result, call

SITE = "https://www.example.test:8443"


def security_txt_fields(result: Result) -> dict[str, str]:
    fields = {}
    for line in result.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
    return fields


def test_site_headers() -> None:
    result = call(StaticSiteApp("www.example.test"), f"{SITE}/")
    assert result.status == 200 and "text/html" in (result.header("Content-Type") or "")
    assert result.header("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"
    assert result.header("X-Content-Type-Options") == "nosniff"
    assert result.header("Referrer-Policy")
    assert "frame-ancestors 'none'" in (result.header("Content-Security-Policy") or "")
    assert call(StaticSiteApp("www.example.test"), f"{SITE}/missing").header(
        "Strict-Transport-Security")  # on every answer, 404s included


def test_site_header_faults() -> None:
    assert call(StaticSiteApp("www.example.test", faults={"no-hsts"}), f"{SITE}/").header(
        "Strict-Transport-Security") is None
    assert call(StaticSiteApp("www.example.test", hsts=False), f"{SITE}/").header(
        "Strict-Transport-Security") is None
    weak = call(StaticSiteApp("www.example.test", faults={"weak-hsts"}), f"{SITE}/")
    assert weak.header("Strict-Transport-Security") == "max-age=86400; includeSubDomains"
    bare = call(StaticSiteApp("www.example.test", faults={"no-headers"}), f"{SITE}/")
    for name in ("X-Content-Type-Options", "Referrer-Policy", "Content-Security-Policy"):
        assert bare.header(name) is None
    assert bare.header("Strict-Transport-Security")


def test_security_txt() -> None:
    result = call(StaticSiteApp("www.example.test"), f"{SITE}/.well-known/security.txt")
    assert result.status == 200
    assert result.header("Content-Type") == "text/plain; charset=utf-8"
    fields = security_txt_fields(result)
    assert fields["contact"] == "mailto:security@www.example.test"
    expires = datetime.strptime(fields["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    now = datetime.now(UTC)
    assert now + timedelta(days=300) < expires < now + timedelta(days=365)
    assert fields["canonical"] == f"{SITE}/.well-known/security.txt"


def test_security_txt_faults() -> None:
    path = f"{SITE}/.well-known/security.txt"
    assert call(StaticSiteApp("www.example.test", faults={"security-txt-missing"}), path
                ).status == 404
    assert call(StaticSiteApp("www.example.test", security_txt=False), path).status == 404
    expired = security_txt_fields(call(
        StaticSiteApp("www.example.test", faults={"security-txt-expired"}), path))
    expires = datetime.strptime(expired["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert expires < datetime.now(UTC)
    no_contact = security_txt_fields(call(
        StaticSiteApp("www.example.test", faults={"security-txt-no-contact"}), path))
    assert "contact" not in no_contact and "expires" in no_contact


# -- MTA-STS ------------------------------------------------------------------------------------

STS = "https://mta-sts.example.test:8443"
POLICY = f"{STS}/.well-known/mta-sts.txt"


def parse_policy(text: str) -> dict[str, list[str]]:
    """RFC 8461 3.2: key: value lines, CRLF or LF; raises on a line without a colon."""
    fields: dict[str, list[str]] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"bad policy line {line!r}")
        fields.setdefault(key.strip(), []).append(value.strip())
    return fields


def sts(**kw: Any) -> MtaStsPolicyApp:
    return MtaStsPolicyApp("example.test", ["mail.example.test", "*.mx.example.test"], **kw)


def test_policy() -> None:
    app = sts()
    assert app.hosts == ("mta-sts.example.test",)
    result = call(app, POLICY)
    assert result.status == 200 and result.header("Content-Type") == "text/plain"
    assert result.text.endswith("\r\n")
    assert parse_policy(result.text) == {
        "version": ["STSv1"], "mode": ["enforce"],
        "mx": ["mail.example.test", "*.mx.example.test"], "max_age": ["604800"]}
    assert call(app, f"{STS}/other").status == 404
    with pytest.raises(ValueError):
        MtaStsPolicyApp("example.test", ["mx"], mode="on")


def test_policy_faults() -> None:
    assert call(sts(faults={"policy-missing"}), POLICY).status == 404
    moved = call(sts(faults={"policy-redirect"}), POLICY)
    assert moved.status in (301, 302)
    target = moved.header("Location") or ""
    assert target.startswith(STS) and target != POLICY
    assert parse_policy(call(sts(faults={"policy-redirect"}), target).text)["mode"] == [
        "enforce"]
    assert "text/plain" not in (call(sts(faults={"policy-wrong-content-type"}), POLICY)
                                .header("Content-Type") or "")
    with pytest.raises(ValueError):
        parse_policy(call(sts(faults={"policy-bad-syntax"}), POLICY).text)
    assert parse_policy(call(sts(faults={"policy-testing"}), POLICY).text)["mode"] == ["testing"]
    mismatch = parse_policy(call(sts(faults={"policy-mx-mismatch"}), POLICY).text)["mx"]
    assert "mail.example.test" not in mismatch and "*.mx.example.test" not in mismatch


# -- HTTP -> HTTPS ------------------------------------------------------------------------------

def test_http_redirect() -> None:
    result = call(HttpRedirectApp(https_port=8443), "http://www.example.test:8080/a?b=c")
    assert result.status == 301
    assert result.header("Location") == "https://www.example.test:8443/a?b=c"
    plain = call(HttpRedirectApp(), "http://www.example.test/")
    assert plain.header("Location") == "https://www.example.test/"


def test_http_redirect_faults() -> None:
    none = call(HttpRedirectApp(faults={"no-redirect"}), "http://www.example.test/")
    assert none.status == 200 and none.header("Location") is None
    other = call(HttpRedirectApp(faults={"redirect-other-host"}), "http://example.test/")
    assert other.header("Location") == "https://www.example.test/"
    chosen = call(HttpRedirectApp(other_host="elsewhere.test", faults={"redirect-other-host"}),
                  "http://example.test/x")
    assert chosen.header("Location") == "https://elsewhere.test/x"
