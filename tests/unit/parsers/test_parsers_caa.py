"""CAA property parsing and the RFC 8659 authorization rule."""

from __future__ import annotations

from typing import Any

import pytest

from watchtower.parsers import ParseError
from watchtower.parsers.caa import CaaRecord, authorizes, parse

VALID: list[tuple[tuple[int, str, str | bytes], dict[str, Any]]] = [
    ((0, "issue", "letsencrypt.org"), {"tag": "issue", "issuer": "letsencrypt.org",
                                       "critical": False, "known": True}),
    ((0, "ISSUE", "  LetsEncrypt.org  "), {"tag": "issue", "issuer": "letsencrypt.org"}),
    ((0, "issue", ";"), {"issuer": None, "parameters": ()}),
    ((0, "issue", ""), {"issuer": None}),
    ((0, "issue", "ca.example.net;"), {"issuer": "ca.example.net"}),
    ((0, "issue", "ca.example.net; "), {"issuer": "ca.example.net"}),
    ((128, "issuewild", "x--y.example"), {"tag": "issuewild", "critical": True,
                                          "issuer": "x--y.example"}),
    ((0, "issue", "letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/1;"
                  " validationmethods=dns-01,http-01"),
     {"account_uri": "https://acme-v02.api.letsencrypt.org/acme/acct/1",
      "validation_methods": ("dns-01", "http-01")}),
    ((0, "issue", "ca.example.net; Policy = ev ; x=; y=a=b"),
     {"parameters": (("policy", "ev"), ("x", ""), ("y", "a=b"))}),
    ((0, "issue", "ca.example.net; validationmethods=ca-custom"),
     {"validation_methods": ("ca-custom",)}),
    ((0, "iodef", "mailto:security@example.com"), {"iodef": "mailto:security@example.com"}),
    ((0, "iodef", "https://iodef.example.com/report"), {"iodef": "https://iodef.example.com/report"}),
    ((0, "iodef", "http://iodef.example.com/"), {"tag": "iodef"}),
    ((0, "contactemail", "admin@example.com"), {"known": True, "value": "admin@example.com"}),
    ((128, "tbs", "anything at all"), {"known": False, "critical": True}),
    ((1, "issue", "ca.example.net"), {"critical": False, "flags": 1}),
    ((255, "issue", "ca.example.net"), {"critical": True}),
    ((0, "issue", b"ca.example.net"), {"issuer": "ca.example.net"}),
]


@pytest.mark.parametrize(("rdata", "expected"), VALID)
def test_parse_valid(rdata: tuple[int, str, str | bytes], expected: dict[str, Any]) -> None:
    record = parse(*rdata)
    for key, want in expected.items():
        assert getattr(record, key) == want, key


INVALID: list[tuple[tuple[Any, Any, Any], str]] = [
    ((256, "issue", "x.example"), "flags must be an integer 0..255"),
    ((-1, "issue", "x.example"), "flags must be"),
    ((True, "issue", "x.example"), "flags must be"),
    ((0, "", "x.example"), "tag must be 1 to 15"),
    ((0, "issue-wild", "x.example"), "tag must be 1 to 15"),
    ((0, "a" * 16, "x.example"), "tag must be 1 to 15"),
    ((0, "issue", b"\xff"), "not valid UTF-8"),
    ((0, "issue", "ca example net"), "invalid issuer domain"),
    ((0, "issue", "-ca.example.net"), "invalid issuer domain"),
    ((0, "issue", "ca.example.net."), "invalid issuer domain"),
    ((0, "issue", "ca_1.example.net"), "invalid issuer domain"),
    ((0, "issue", "ca.example.net; ;"), "empty parameter"),
    ((0, "issue", "ca.example.net; a=b;"), "empty parameter"),
    ((0, "issue", "ca.example.net; novalue"), "invalid parameter"),
    ((0, "issue", "ca.example.net; -x=1"), "invalid parameter"),
    ((0, "issue", "ca.example.net; x=a b"), "invalid characters"),
    ((0, "issue", "ca.example.net; x=1; X=2"), "duplicate parameter"),
    ((0, "issue", "ca.example.net; accounturi=nope"), "invalid accounturi"),
    ((0, "issue", "ca.example.net; validationmethods="), "validationmethods must be"),
    ((0, "issue", "ca.example.net; validationmethods=dns-01,,http-01"), "validationmethods"),
    ((0, "iodef", "security@example.com"), "invalid iodef URL"),
    ((0, "iodef", "ftp://example.com/"), "is not mailto:, http: or https:"),
    ((0, "iodef", ""), "invalid iodef URL"),
]


@pytest.mark.parametrize(("rdata", "reason"), INVALID)
def test_parse_invalid(rdata: tuple[Any, Any, Any], reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(*rdata)
    assert reason in info.value.reason


LE = "letsencrypt.org"


@pytest.mark.parametrize(
    ("records", "issuer", "wildcard", "expected"),
    [
        ([], LE, False, True),
        ([(0, "iodef", "mailto:x@example.com")], LE, False, True),
        ([(0, "tbs", "x")], LE, False, True),
        ([(128, "tbs", "x")], LE, False, False),
        ([(128, "issue", LE)], LE, False, True),
        ([(128, "iodef", "mailto:x@example.com")], LE, False, True),
        ([(0, "issue", LE)], LE, False, True),
        ([(0, "issue", LE)], "LetsEncrypt.org.", False, True),
        ([(0, "issue", "sectigo.com")], LE, False, False),
        ([(0, "issue", "sectigo.com"), (0, "issue", LE)], LE, False, True),
        ([(0, "issue", ";")], LE, False, False),
        ([(0, "issue", "bad domain!"), (0, "iodef", "mailto:x@example.com")], LE, False, False),
        ([(0, "issue", "bad domain!"), (0, "issue", LE)], LE, False, True),
        # issuewild is ignored for non-wildcard names...
        ([(0, "issuewild", "sectigo.com")], LE, False, True),
        ([(0, "issue", LE), (0, "issuewild", ";")], LE, False, True),
        # ...and governs wildcard names when present, else issue does.
        ([(0, "issue", LE), (0, "issuewild", ";")], LE, True, False),
        ([(0, "issue", "sectigo.com"), (0, "issuewild", LE)], LE, True, True),
        ([(0, "issue", LE)], LE, True, True),
        ([(0, "issue", "sectigo.com")], LE, True, False),
        ([(0, "issuewild", "bad!")], LE, True, False),
    ],
)
def test_authorizes(records: list[tuple[int, str, str]], issuer: str, wildcard: bool,
                    expected: bool) -> None:
    assert authorizes(records, issuer, wildcard) is expected
    parsed: list[CaaRecord | tuple[int, str, str | bytes]] = []
    for rdata in records:
        try:
            parsed.append(parse(*rdata))
        except ParseError:
            parsed.append(rdata)
    assert authorizes(parsed, issuer, wildcard) is expected


def test_authorizes_with_rfc8657_parameters() -> None:
    acct = "https://acme-v02.api.letsencrypt.org/acme/acct/1"
    records = [parse(0, "issue", f"{LE}; accounturi={acct}; validationmethods=dns-01")]
    assert authorizes(records, LE)
    assert authorizes(records, LE, account_uri=acct, validation_method="DNS-01")
    assert not authorizes(records, LE, account_uri=acct + "2")
    assert not authorizes(records, LE, validation_method="http-01")
    plain = [parse(0, "issue", LE)]
    assert authorizes(plain, LE, account_uri=acct, validation_method="http-01")
