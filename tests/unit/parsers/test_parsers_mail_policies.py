"""MTA-STS records and policies, MX matching, TLS-RPT records, TXT helpers."""

from __future__ import annotations

from typing import Any

import pytest

from watchtower.parsers import ParseError, mtasts, tlsrpt
from watchtower.parsers.txt import join_txt, select_records

# --------------------------------------------------------------------------------------------
# TXT helpers


def test_join_txt_concatenates_without_spaces() -> None:
    assert join_txt([b"v=spf1 ip4:192.0.2.0/24 in", b"clude:_spf.example.com -all"]) == \
        "v=spf1 ip4:192.0.2.0/24 include:_spf.example.com -all"
    assert join_txt([]) == ""
    assert join_txt([b"caf\xc3\xa9"]) == "caf\u00e9"
    assert join_txt([bytearray(b"ab"), memoryview(b"cd")]) == "abcd"  # type: ignore[list-item]


def test_join_txt_invalid_utf8() -> None:
    with pytest.raises(ParseError, match=r"not valid UTF-8 \(byte b'\\xff' at offset 3\)") as info:
        join_txt([b"abc", b"\xff"])
    assert info.value.position == 3


@pytest.mark.parametrize(
    ("records", "tag", "kwargs", "expected"),
    [
        (["v=spf1 -all", "v=spf1", "V=SPF1 a", "v=spf10", "x v=spf1"], "v=spf1", {},
         ["v=spf1 -all", "v=spf1", "V=SPF1 a"]),
        (["v=STSv1; id=1", "v=stsv1; id=2", "v=STSv1", "v=STSv10;"], "v=STSv1",
         {"terminators": "; ", "case_sensitive": True}, ["v=STSv1; id=1", "v=STSv1"]),
        ([], "v=spf1", {}, []),
    ],
)
def test_select_records(records: list[str], tag: str, kwargs: dict[str, Any],
                        expected: list[str]) -> None:
    assert select_records(records, tag, **kwargs) == expected


# --------------------------------------------------------------------------------------------
# MTA-STS


@pytest.mark.parametrize(
    ("text", "record_id", "warning"),
    [
        ("v=STSv1; id=20240101T000000;", "20240101T000000", None),
        ("v=STSv1;id=abc", "abc", None),
        ("v=STSv1 ;  id=abc  ; ", "abc", None),
        ("v=STSv1; id=a; id=b", "a", "repeated"),
        ("v=STSv1; id=1; ext.x-y_z=v:/?", "1", "unknown field 'ext.x-y_z'"),
        ("v=STSv1; id=" + "9" * 32, "9" * 32, None),
    ],
)
def test_sts_record_valid(text: str, record_id: str, warning: str | None) -> None:
    record = mtasts.parse_record(text)
    assert record.id == record_id
    if warning:
        assert any(warning in w for w in record.warnings)
    else:
        assert record.warnings == ()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "must start with 'v=STSv1'"),
        ("v=STSv2; id=1", "must start with 'v=STSv1'"),
        ("v=STSv10; id=1", "must be followed by ';'"),
        ("v=stsv1; id=1", "must start with 'v=STSv1'"),
        (" v=STSv1; id=1", "must start with 'v=STSv1'"),
        ("v=STSv1", "missing required 'id'"),
        ("v=STSv1;", "empty field"),
        ("v=STSv1; ext=1", "missing required 'id'"),
        ("v=STSv1; id=", "invalid value"),
        ("v=STSv1; id=abc-def", "id must be 1 to 32 letters or digits"),
        ("v=STSv1; id=" + "1" * 33, "id must be 1 to 32"),
        ("v=STSv1;; id=1", "empty field"),
        ("v=STSv1; id=1;;", "empty field"),
        ("v=STSv1; id 1", "invalid field"),
        ("v=STSv1; id = 1", "invalid field"),
        ("v=STSv1; _x=1; id=1", "invalid field"),
        ("v=STSv1; id=1; x=a=b", "invalid value"),
        ("v=STSv1; id=1\x00", "invalid character"),
    ],
)
def test_sts_record_invalid(text: str, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        mtasts.parse_record(text)
    assert reason in info.value.reason


GOOD_POLICY = ("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
               "mx: *.example.net\r\nmax_age: 604800\r\n")


def test_policy_real_world() -> None:
    policy = mtasts.parse_policy(GOOD_POLICY)
    assert policy.mode == "enforce" and policy.max_age == 604800
    assert policy.mx == ("mail.example.com", "*.example.net")
    assert policy.warnings == ()
    assert policy.matches("MAIL.example.com.") and policy.matches("mx1.example.net")
    assert policy.unmatched(["mail.example.com", "a.b.example.net", "example.net"]) == \
        ["a.b.example.net", "example.net"]
    assert mtasts.parse_policy(GOOD_POLICY.encode()).mx == policy.mx
    assert mtasts.parse_policy(GOOD_POLICY.replace("\r\n", "\n")).mode == "enforce"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 86400",
         {"mode": "testing", "max_age": 86400}),
        ("version: STSv1\nmode: none\nmax_age: 0\n", {"mode": "none", "mx": ()}),
        ("version:STSv1\nmode:enforce\t\nmx:\tMX.Example.com \nmax_age: 31557600\n",
         {"mx": ("mx.example.com",), "max_age": 31557600}),
        ("version: STSv1\nmode: enforce\nmode: none\nmx: a.example.com\nmax_age: 1\n",
         {"mode": "enforce", "warning": "'mode' repeated"}),
        ("version: STSv1\nmode: none\nmax_age: 5\nfoo: bar baz\n",
         {"extensions": (("foo", "bar baz"),), "warning": "unknown field 'foo'"}),
        ("version: STSv1\n\nmode: none\nmax_age: 5\n", {"warning": "line 2 is empty"}),
    ],
)
def test_policy_valid(body: str, expected: dict[str, Any]) -> None:
    policy = mtasts.parse_policy(body)
    for key, want in expected.items():
        if key == "warning":
            assert any(want in w for w in policy.warnings), policy.warnings
        else:
            assert getattr(policy, key) == want


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "missing 'version: STSv1'"),
        ("mode: none\nmax_age: 1\n", "missing 'version"),
        ("version: STSv2\nmode: none\nmax_age: 1\n", "version must be 'STSv1'"),
        ("version: STSv1\nmax_age: 1\n", "missing 'mode'"),
        ("version: STSv1\nmode: Enforce\nmax_age: 1\n", "mode must be enforce, testing or none"),
        ("version: STSv1\nmode: none\n", "missing 'max_age'"),
        ("version: STSv1\nmode: none\nmax_age: 1d\n", "max_age must be a number"),
        ("version: STSv1\nmode: none\nmax_age: -1\n", "max_age must be a number"),
        ("version: STSv1\nmode: none\nmax_age: 31557601\n", "above the maximum"),
        ("version: STSv1\nmode: none\nmax_age: 99999999999\n", "max_age must be a number"),
        ("version: STSv1\nmode: enforce\nmax_age: 1\n", "needs at least one 'mx'"),
        ("version: STSv1\nmode: testing\nmax_age: 1\n", "needs at least one 'mx'"),
        ("version: STSv1\nmode: enforce\nmx: *.*.example.com\nmax_age: 1\n", "'*' is only"),
        ("version: STSv1\nmode: enforce\nmx: mail*.example.com\nmax_age: 1\n", "'*' is only"),
        ("version: STSv1\nmode: enforce\nmx: localhost\nmax_age: 1\n", "invalid mx pattern"),
        ("version: STSv1\nmode: enforce\nmx: a..example.com\nmax_age: 1\n", "empty label"),
        ("version: STSv1\nmode: enforce\nmx: 192.0.2.1\nmax_age: 1\n", "all digits"),
        ("version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n", "empty value for 'mx'"),
        ("version STSv1\n", "line 1 is not 'key: value'"),
        ("<html>\n", "line 1 is not 'key: value'"),
        ("version: STSv1\nmo de: none\n", "line 2 is not"),
        ("version: STSv1\nmode: none\nmax_age: 1\nx: caf\u00e9\n", "invalid character"),
        (b"version: STSv1\xff\n", "not valid UTF-8"),
    ],
)
def test_policy_invalid(body: str | bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        mtasts.parse_policy(body)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("mail.example.com", "mail.example.com", True),
        ("mail.example.com", "MAIL.EXAMPLE.COM.", True),
        ("Mail.Example.com.", "mail.example.com", True),
        ("mail.example.com", "mail2.example.com", False),
        ("*.example.com", "mx1.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", ".example.com", False),
        ("*.example.com", "mx1.example.org", False),
        ("*.example.com", "*.example.com", True),
        ("", "mx.example.com", False),
        ("mx.example.com", "", False),
    ],
)
def test_mx_matches(pattern: str, host: str, expected: bool) -> None:
    assert mtasts.mx_matches(pattern, host) is expected


# --------------------------------------------------------------------------------------------
# TLS-RPT


def test_tlsrpt_valid() -> None:
    record = tlsrpt.parse("v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example.com/x")
    assert [(u.scheme, u.host, u.supported) for u in record.rua] == [
        ("mailto", "example.com", True), ("https", "r.example.com", True)]
    assert record.valid_rua == record.rua and record.warnings == ()
    spaced = tlsrpt.parse("v=TLSRPTv1 ;rua=mailto:a@example.com , mailto:b@example.com;")
    assert len(spaced.rua) == 2
    ext = tlsrpt.parse("v=TLSRPTv1; rua=mailto:a@example.com; x-ext=1")
    assert ext.extensions == (("x-ext", "1"),)
    ftp = tlsrpt.parse("v=TLSRPTv1; rua=ftp://r.example.com/x")
    assert ftp.valid_rua == () and not ftp.rua[0].supported
    assert any("ftp:" in w for w in ftp.warnings)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "must start with 'v=TLSRPTv1'"),
        ("v=tlsrptv1; rua=mailto:a@example.com", "must start with 'v=TLSRPTv1'"),
        ("v=TLSRPTv10; rua=mailto:a@example.com", "must be followed by ';'"),
        ("v=TLSRPTv1", "missing required 'rua'"),
        ("v=TLSRPTv1;", "empty field"),
        ("v=TLSRPTv1; x=1", "missing required 'rua'"),
        ("v=TLSRPTv1; rua=", "empty rua="),
        ("v=TLSRPTv1; rua=tls@example.com", "no URI scheme"),
        ("v=TLSRPTv1; rua=mailto:a@example.com,", "empty URI"),
        ("v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com", "duplicate field"),
        ("v=TLSRPTv1; rua=https://", "without a valid host"),
        ("v=TLSRPTv1; rua=https://r.example.com:99999/", "without a valid host"),
        ("v=TLSRPTv1; rua mailto:a@example.com", "invalid field"),
        ("v=TLSRPTv1; rua=mailto:a@example.com; x=", "invalid value"),
        ("v=TLSRPTv1; rua=mailto:a@example.com;; x=1", "empty field"),
        ("v=TLSRPTv1; rua=mailto:a@\u00e9.com", "invalid character"),
    ],
)
def test_tlsrpt_invalid(text: str, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        tlsrpt.parse(text)
    assert reason in info.value.reason
