"""DMARC records, organizational domains and external report authorization."""

from __future__ import annotations

from typing import Any

import pytest

from watchtower.parsers import ParseError
from watchtower.parsers.dmarc import (
    DmarcRecord,
    external_destinations,
    is_dmarc_record,
    is_report_authorization,
    organizational_domain,
    parse,
    select_dmarc,
)

VALID: list[tuple[str, dict[str, Any] | str]] = [
    ("v=DMARC1; p=none", {"p": "none", "sp": None, "subdomain_policy": "none",
                          "nonexistent_policy": "none", "pct": 100, "adkim": "r",
                          "aspf": "r", "fo": ("0",), "rf": ("afrf",), "ri": 86400,
                          "testing": False, "psd": "u", "rua": (), "ruf": (),
                          "warnings": ()}),
    ("v=DMARC1;p=reject;", {"p": "reject"}),
    ("v = DMARC1 ; p = Quarantine ; ", {"p": "quarantine"}),
    ("V=DMARC1; P=REJECT; SP=none", {"p": "reject", "sp": "none", "subdomain_policy": "none"}),
    ("v=DMARC1; p=reject; sp=quarantine; np=reject",
     {"sp": "quarantine", "np": "reject", "nonexistent_policy": "reject"}),
    ("v=DMARC1; p=reject; sp=none", {"nonexistent_policy": "none"}),
    ("v=DMARC1; p=quarantine; pct=0", {"pct": 0}),
    ("v=DMARC1; p=quarantine; pct=050", {"pct": 50}),
    ("v=DMARC1; p=none; adkim=s; aspf=S", {"adkim": "s", "aspf": "s"}),
    ("v=DMARC1; p=none; fo=1:d:s", {"fo": ("1", "d", "s")}),
    ("v=DMARC1; p=none; fo=0 : 1", {"fo": ("0", "1")}),
    ("v=DMARC1; p=none; rf=afrf:iodef", {"rf": ("afrf", "iodef")}),
    ("v=DMARC1; p=none; ri=3600", {"ri": 3600}),
    ("v=DMARC1; p=none; ri=4294967295", {"ri": 4294967295}),
    ("v=DMARC1; p=none; t=y", {"testing": True}),
    ("v=DMARC1; p=none; t=n; psd=y", {"testing": False, "psd": "y"}),
    ("v=DMARC1; p=reject; rua=mailto:dmarc@example.com",
     {"rua_addresses": ["dmarc@example.com"], "rua_sizes": [None]}),
    ("v=DMARC1; p=reject; rua=mailto:a@example.com!10m, mailto:b@Reports.Example.NET!500",
     {"rua_addresses": ["a@example.com", "b@reports.example.net"],
      "rua_sizes": [10 * 1024 * 1024, 500]}),
    ("v=DMARC1; p=reject; ruf=mailto:f@example.com!1K,mailto:g@example.com!2g!",
     "invalid size"),
    ("v=DMARC1; p=reject; ruf=mailto:f@example.com!1t",
     {"ruf_addresses": ["f@example.com"], "ruf_sizes": [1 << 40]}),
    ("v=DMARC1; p=reject; rua=mailto:d%40x@example.com?subject=hi",
     {"rua_addresses": ["d@x@example.com"]}),
    ("v=DMARC1; p=reject; rua=https://dmarc.example.com/report",
     {"rua_hosts": ["dmarc.example.com"], "warning": "not mailto:"}),
    ("v=DMARC1; p=none; foo=bar; rau=mailto:x@example.com",
     {"unknown_tags": ("foo", "rau"), "warning": "unknown tag 'rau'"}),
    ("v=DMARC1; p=none;; sp=none", {"warning": "empty element"}),
    ("v=DMARC1; p=none; rf=iodef", {"warning": "does not include 'afrf'"}),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parse_valid(text: str, expected: dict[str, Any] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(ParseError, match=expected):
            parse(text)
        return
    record = parse(text)
    assert isinstance(record, DmarcRecord)
    for key, want in expected.items():
        if key == "warning":
            assert any(want in w for w in record.warnings), record.warnings
        elif key.endswith("_addresses"):
            uris = getattr(record, key.split("_")[0])
            assert [u.address for u in uris] == want
        elif key.endswith("_sizes"):
            uris = getattr(record, key.split("_")[0])
            assert [u.max_size for u in uris] == want
        elif key.endswith("_hosts"):
            uris = getattr(record, key.split("_")[0])
            assert [u.host for u in uris] == want
        else:
            assert getattr(record, key) == want, key


INVALID = [
    ("", "first tag must be 'v=DMARC1'"),
    ("p=none; v=DMARC1", "first tag must be 'v=DMARC1'"),
    ("; v=DMARC1; p=none", "first tag must be 'v=DMARC1'"),
    ("v=DMARC2; p=none", "version must be exactly 'DMARC1'"),
    ("v=dmarc1; p=none", "version must be exactly 'DMARC1'"),
    ("v=DMARC1", "missing required 'p' tag"),
    ("v=DMARC1; sp=none; rua=mailto:a@example.com", "missing required 'p' tag"),
    ("v=DMARC1; p=", "invalid p=''"),
    ("v=DMARC1; p=block", "invalid p='block'"),
    ("v=DMARC1; p=none; sp=nothing", "invalid sp="),
    ("v=DMARC1; p=none; np=x", "invalid np="),
    ("v=DMARC1; p=none; p=reject", "duplicate DMARC tag 'p'"),
    ("v=DMARC1; p=none; RUA=mailto:a@example.com; rua=mailto:b@example.com",
     "duplicate DMARC tag 'rua'"),
    ("v=DMARC1; v=DMARC1; p=none", "duplicate DMARC tag 'v'"),
    ("v=DMARC1; p=none; pct=101", "invalid pct="),
    ("v=DMARC1; p=none; pct=-1", "invalid pct="),
    ("v=DMARC1; p=none; pct=ten", "invalid pct="),
    ("v=DMARC1; p=none; pct=1000", "invalid pct="),
    ("v=DMARC1; p=none; ri=4294967296", "invalid ri="),
    ("v=DMARC1; p=none; ri=1h", "invalid ri="),
    ("v=DMARC1; p=none; adkim=relaxed", "invalid adkim="),
    ("v=DMARC1; p=none; aspf=", "invalid aspf="),
    ("v=DMARC1; p=none; fo=2", "invalid fo="),
    ("v=DMARC1; p=none; fo=", "invalid fo="),
    ("v=DMARC1; p=none; rf=", "invalid rf="),
    ("v=DMARC1; p=none; rf=af rf", "invalid rf="),
    ("v=DMARC1; p=none; t=yes", "invalid t="),
    ("v=DMARC1; p=none; psd=x", "invalid psd="),
    ("v=DMARC1; p=none; rua=", "empty rua="),
    ("v=DMARC1; p=none; rua=dmarc@example.com", "no URI scheme"),
    ("v=DMARC1; p=none; rua=mailto:", "without a valid address"),
    ("v=DMARC1; p=none; rua=mailto:dmarc", "without a valid address"),
    ("v=DMARC1; p=none; rua=mailto:dmarc@localhost", "without a valid address"),
    ("v=DMARC1; p=none; rua=mailto:a@example.com,", "empty URI"),
    ("v=DMARC1; p=none; rua=mailto:a b@example.com", "spaces"),
    ("v=DMARC1; p=none; rua=mailto:a@example.com!", "invalid size limit"),
    ("v=DMARC1; p=none; rua=mailto:a@example.com!10x", "invalid size limit"),
    ("v=DMARC1; p=none; rua=mailto:a%zz@example.com", "bad percent escape"),
    ("v=DMARC1; p=none; rua=https:///x", "without a valid host"),
    ("v=DMARC1; p=none; rua=https:dmarc.example.com", "without '//'"),
    ("v=DMARC1; p=none; ruf=mailto:a%FF@example.com", "without a valid address"),
    ("v=DMARC1; p=none; 1x=y", "invalid DMARC tag name"),
    ("v=DMARC1; p=none; novalue", "element without '='"),
    ("v=DMARC1; p=none\x00", "invalid character"),
    ("v=DMARC1; p=nöne", "invalid character"),
]


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_parse_invalid(text: str, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert reason in info.value.reason


def test_typical_records() -> None:
    record = parse("v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s; pct=100; "
                   "rua=mailto:dmarc-reports@example.org; ruf=mailto:dmarc-forensic@example.org;"
                   " fo=1")
    assert record.p == "reject" and record.subdomain_policy == "reject"
    assert record.rua[0].host == "example.org" and record.ruf[0].scheme == "mailto"
    assert record.tags[0] == ("v", "DMARC1")
    assert record.unknown_tags == ()


def test_selection() -> None:
    texts = ["v=DMARC1; p=none", "v=DMARC1", "v = DMARC1;p=none", "v=DMARC10; p=none",
             "v=spf1 -all", "p=none; v=DMARC1", " v=DMARC1; p=none"]
    assert select_dmarc(texts) == ["v=DMARC1; p=none", "v=DMARC1", "v = DMARC1;p=none",
                                   " v=DMARC1; p=none"]
    assert not is_dmarc_record("")


@pytest.mark.parametrize(
    ("name", "org"),
    [
        ("example.com", "example.com"),
        ("mail.example.com", "example.com"),
        ("a.b.c.example.com.", "example.com"),
        ("MAIL.Example.COM", "example.com"),
        ("www.example.co.uk", "example.co.uk"),
        ("co.uk", "co.uk"),
        ("foo.github.io", "foo.github.io"),
        ("_dmarc.example.org", "example.org"),
        ("host.example.test", "example.test"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_organizational_domain(name: str, org: str) -> None:
    assert organizational_domain(name) == org


@pytest.mark.parametrize("bad", ["", ".", "localhost", "a..example.com", "exa mple.com",
                                 "x" * 64 + ".com", "\udcff.example"])
def test_organizational_domain_rejects(bad: str) -> None:
    with pytest.raises(ParseError):
        organizational_domain(bad)


def test_external_destinations() -> None:
    record = parse("v=DMARC1; p=reject; rua=mailto:d@example.com,mailto:x@Reports.Vendor.NET,"
                   "mailto:y@reports.vendor.net; ruf=mailto:f@sub.example.com,"
                   "mailto:f@forensics.other.org,https://h.example.org/r")
    dests = external_destinations("mail.example.com.", record)
    assert [(d.kind, d.host, d.query_name) for d in dests] == [
        ("rua", "reports.vendor.net", "mail.example.com._report._dmarc.reports.vendor.net"),
        ("ruf", "forensics.other.org", "mail.example.com._report._dmarc.forensics.other.org"),
        ("ruf", "h.example.org", "mail.example.com._report._dmarc.h.example.org"),
    ]
    assert dests[0].uri == "mailto:x@Reports.Vendor.NET"
    assert external_destinations("example.com", parse("v=DMARC1; p=none")) == []
    ip_host = parse("v=DMARC1; p=none; rua=https://192.0.2.1/r")
    assert external_destinations("example.com", ip_host) == []


def test_report_authorization() -> None:
    assert is_report_authorization(["v=DMARC1"])
    assert is_report_authorization(["other", "v=DMARC1;"])
    assert not is_report_authorization([])
    assert not is_report_authorization(["v=spf1 -all"])
