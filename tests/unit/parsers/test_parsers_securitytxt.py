"""security.txt (RFC 9116) fields, signature wrapper and findings."""

from __future__ import annotations

import datetime as dt

import pytest

from watchtower.parsers import ParseError
from watchtower.parsers.securitytxt import parse

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)

FULL = """# Our security contact
Contact: mailto:security@example.com
Contact: https://example.com/security
contact: tel:+1-201-555-0123
Expires: 2025-12-31T23:59:59Z
Encryption: https://example.com/pgp-key.txt
Encryption: openpgp4fpr:5f2de5521c63a801ab59ccb603d49de44b29100f
Acknowledgments: https://example.com/hall-of-fame.html
Preferred-Languages: en, nl-BE
Canonical: https://example.com/.well-known/security.txt
Policy: https://example.com/disclosure.html
Hiring: https://example.com/jobs.html
CSAF: https://example.com/.well-known/csaf/provider-metadata.json
X-Custom: anything goes
"""


def test_full_file() -> None:
    txt = parse(FULL, now=NOW)
    assert txt.contact == ("mailto:security@example.com", "https://example.com/security",
                           "tel:+1-201-555-0123")
    assert txt.expires == dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert not txt.expired and txt.has_contact
    assert len(txt.encryption) == 2
    assert txt.acknowledgments == ("https://example.com/hall-of-fame.html",)
    assert txt.preferred_languages == ("en", "nl-BE")
    assert txt.canonical and txt.policy and txt.hiring and txt.csaf
    assert txt.extensions == (("X-Custom", "anything goes"),)
    assert txt.problems == ()
    assert txt.warnings == ("unknown field 'X-Custom'",)
    assert not txt.signed


SIGNED = """-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Contact: mailto:security@example.com
- Expires: 2026-01-01T00:00:00+01:00
- - dash-escaped comment? no: a field line starting with '- ' is unescaped
-----BEGIN PGP SIGNATURE-----

iHUEARYKAB0WIQQ...
-----END PGP SIGNATURE-----
"""


def test_signed_file() -> None:
    txt = parse(SIGNED.replace("\n", "\r\n"), now=NOW)
    assert txt.signed
    assert txt.contact == ("mailto:security@example.com",)
    assert txt.expires == dt.datetime(2025, 12, 31, 23, 0, tzinfo=dt.UTC)
    assert txt.problems == ()
    assert any("line" in w for w in txt.warnings)  # the '- ...' line is not a field


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("Expires: 2025-12-31T23:59:59Z\n", "missing Contact"),
        ("Contact: mailto:a@example.com\n", "missing Expires"),
        ("Contact: mailto:a@example.com\nExpires: 2025-01-01T00:00:00Z\n", "in the past"),
        ("Contact: mailto:a@example.com\nExpires: 2025-06-01T12:00:00Z\n", "in the past"),
        ("Contact: mailto:a@example.com\nExpires: 2025-12-31\n", "not an RFC 3339 date-time"),
        ("Contact: mailto:a@example.com\nExpires: 2025-12-31T23:59:59\n", "not an RFC 3339"),
        ("Contact: mailto:a@example.com\nExpires: 2025-13-31T23:59:59Z\n", "not an RFC 3339"),
        ("Contact: mailto:a@example.com\nExpires: 2025-12-31T23:59:60Z\n", "not an RFC 3339"),
        ("Contact: mailto:a@example.com\nExpires: Thu, 31 Dec 2025 23:59:59 GMT\n",
         "not an RFC 3339"),
        ("Contact: mailto:a@example.com\nExpires: 2025-12-31T23:59:59Z\n"
         "Expires: 2025-11-30T23:59:59Z\n", "Expires appears 2 times"),
        ("Contact: security@example.com\nExpires: 2025-12-31T23:59:59Z\n",
         "is not a URI: no URI scheme (write mailto:...)"),
        ("Contact: security@example.com\nExpires: 2025-12-31T23:59:59Z\n", "no valid Contact"),
        ("Contact: http://example.com/sec\nExpires: 2025-12-31T23:59:59Z\n",
         "must use https://"),
        ("Contact: mailto:a@example.com\nExpires: 2025-12-31T23:59:59Z\n"
         "Policy: http://example.com/p\n", "Policy 'http://example.com/p' must use https://"),
        ("Contact: mailto:a@example.com\nExpires: 2025-12-31T23:59:59Z\n"
         "Preferred-Languages: en\nPreferred-Languages: de\n", "more than once"),
        ("Contact: mailto:a@example.com\nExpires: 2025-12-31T23:59:59Z\n"
         "Preferred-Languages: en;de\n", "not a comma-separated list"),
        ("Contact: mailto:a@example.com\nExpires: 2025-12-31T23:59:59Z\n"
         "Encryption: my key\n", "Encryption 'my key' is not a URI"),
    ],
)
def test_problems(body: str, problem: str) -> None:
    txt = parse(body, now=NOW)
    assert any(problem in p for p in txt.problems), txt.problems


def test_expired_flag_and_naive_now() -> None:
    body = "Contact: mailto:a@example.com\nExpires: 2025-06-01T11:00:00-02:00\n"
    assert not parse(body, now=NOW).expired  # 13:00 UTC, one hour after NOW
    assert parse(body, now=dt.datetime(2025, 6, 1, 14, 0)).expired


def test_expires_variants() -> None:
    body = "Contact: mailto:a@example.com\nExpires: 2025-12-31t23:59:59.123456789z\n"
    txt = parse(body, now=NOW)
    assert txt.expires == dt.datetime(2025, 12, 31, 23, 59, 59, 123456, tzinfo=dt.UTC)


def test_warnings() -> None:
    body = ("\ufeffContact: mailto:a@example.com\nExpires: 2030-01-01T00:00:00Z\n"
            "this line is junk\n   # indented comment\n")
    txt = parse(body.encode(), now=NOW)
    warnings = " | ".join(txt.warnings)
    assert "byte order mark" in warnings
    assert "more than a year ahead" in warnings
    assert "line 3 is neither a field nor a comment" in warnings
    assert txt.problems == ()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "no 'Field: value' line"),
        ("# only a comment\n\n", "no 'Field: value' line"),
        ("<!DOCTYPE html>\n<html><body>Not found</body></html>\n", "no 'Field: value' line"),
        (b"Contact: mailto:a@example.com\n\xff\n", "not valid UTF-8"),
        ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nContact: mailto:a@example.com\n",
         "without a signature block"),
        ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nContact: mailto:a@example.com\n"
         "-----BEGIN PGP SIGNATURE-----\nabc\n", "not terminated"),
        ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256", "no blank line"),
        ("-----BEGIN PGP SIGNED MESSAGE-----\nnot a header\n\nContact: mailto:a@example.com\n",
         "malformed armor header"),
    ],
)
def test_not_security_txt(body: str | bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(body, now=NOW)
    assert reason in info.value.reason
