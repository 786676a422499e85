"""Property-based tests: whatever the input, parsers raise ParseError or nothing.

Each parser is fed arbitrary text and text assembled from its grammar's tokens (so that the
deep branches are reached, not only the "does not start with v=" one). The example count comes
from WATCHTOWER_FUZZ_EXAMPLES: 300 by default for CI, e.g. 100000 for a long run:

    WATCHTOWER_FUZZ_EXAMPLES=100000 pytest tests/unit/parsers/test_parsers_fuzz.py
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchtower.parsers import (
    ParseError,
    caa,
    dkim,
    dmarc,
    mtasts,
    securitytxt,
    spf,
    tlsa,
    tlsrpt,
    txt,
)

EXAMPLES = int(os.environ.get("WATCHTOWER_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

T = TypeVar("T")


def parse_or_error(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call a parser; ParseError (with a reason) is fine, any other exception fails the test."""
    try:
        return fn(*args, **kwargs)
    except ParseError as exc:
        assert isinstance(exc.reason, str) and exc.reason
        assert str(exc)
        return None


# Any unicode, surrogates included, and a bias towards the ASCII the grammars use.
ANY_TEXT = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(exclude_categories=())),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127)),
)


def token_text(tokens: list[str], *, prefix: st.SearchStrategy[str] | None = None,
               seps: tuple[str, ...] = ("", " ")) -> st.SearchStrategy[str]:
    """Text built by concatenating grammar tokens with optional separators."""
    piece = st.one_of(st.sampled_from(tokens), st.text(max_size=3))
    body = st.lists(st.tuples(piece, st.sampled_from(seps)), max_size=24).map(
        lambda items: "".join(a + b for a, b in items))
    if prefix is None:
        return body
    return st.tuples(prefix, body).map(lambda pair: pair[0] + pair[1])


DOMAINS = ["example.com", "_spf.example.com", "a.example.net", "b.example.org", "x.y.example",
           "localhost", "exa mple.com", "example..com", "-bad.example", "example.c_m",
           "%{d}", "%{i}.x.example.com", "%{d2r}.example.com", "x" * 64 + ".com"]

# ---------------------------------------------------------------------------------------------
# SPF

SPF_TOKENS = [
    "v=spf1", " ", "+", "-", "~", "?", "all", "include", "a", "mx", "ptr", "ip4", "ip6",
    "exists", "redirect", "exp", "=", ":", "/", "//", "0", "24", "32", "33", "64", "128", "129",
    "024", "192.0.2.1", "256.1.1.1", "2001:db8::", "::1", "fe80::1%eth0", "%{d}", "%{i}",
    "%{ir}", "%{d2}", "%{d0}", "%{c}", "%{l-}", "%{S}", "%%", "%_", "%-", "%", "%{", "}",
    ".", "..", "-", "_", "foo=bar", "\t", "ä", *DOMAINS,
]
SPF_TEXT = st.one_of(ANY_TEXT, token_text(SPF_TOKENS, prefix=st.sampled_from(
    ["v=spf1 ", "v=spf1", "V=SPF1 ", ""])))


@FUZZ
@given(SPF_TEXT)
def test_spf_parse_never_crashes(text: str) -> None:
    record = parse_or_error(spf.parse, text)
    if record is not None:
        assert record.text == text
        for term in record.terms:
            assert term.text in text
        assert record.dns_term_count >= 0


SPF_NAMES = ["example.com", "a.example.com", "b.example.net", "c.example.org", "d.example.com"]


@st.composite
def spf_zone(draw: st.DrawFn) -> dict[tuple[str, str], Any]:
    zone: dict[tuple[str, str], Any] = {}
    names = st.sampled_from(SPF_NAMES)
    mechs = st.sampled_from(["a", "mx", "ptr", "-all", "~all", "?all", "+all", "ip4:192.0.2.1",
                             "exists:%{i}.example.com", "a:%{d}", "mx:%{d2}"])
    for name in SPF_NAMES:
        kind = draw(st.sampled_from(["spf", "spf", "two", "junk", "nx", "fail", "empty"]))
        if kind == "nx":
            continue
        if kind == "fail":
            zone[(name, "TXT")] = spf.LookupFailure("timeout")
            continue
        terms = draw(st.lists(st.one_of(
            mechs,
            names.map(lambda n: "include:" + n),
            names.map(lambda n: "redirect=" + n),
            st.sampled_from(["ip4:1.2.3.4/40", "include:", "bad"]),
        ), max_size=8))
        text = "v=spf1 " + " ".join(terms)
        if kind == "two":
            zone[(name, "TXT")] = [text, "v=spf1 -all"]
        elif kind == "junk":
            zone[(name, "TXT")] = ["not spf", text]
        elif kind == "empty":
            zone[(name, "TXT")] = []
        else:
            zone[(name, "TXT")] = [text]
        zone[(name, "A")] = draw(st.sampled_from([[], ["192.0.2.1"]]))
        zone[(name, "AAAA")] = draw(st.sampled_from([[], ["2001:db8::1"]]))
        zone[(name, "MX")] = draw(st.sampled_from(
            [[], ["10 mx.example.com."], [f"mx{i}.example.com" for i in range(12)]]))
        if draw(st.booleans()):
            zone[(name, draw(st.sampled_from(["A", "AAAA", "MX"])))] = spf.LookupFailure("x")
    return zone


@FUZZ
@given(spf_zone(), st.sampled_from(SPF_NAMES))
def test_spf_evaluate_never_crashes(zone: dict[tuple[str, str], Any], start: str) -> None:
    calls: list[tuple[str, str]] = []

    def lookup(name: str, rdtype: str) -> spf.LookupAnswer:
        calls.append((name, rdtype))
        value = zone.get((name, rdtype))
        if isinstance(value, spf.LookupFailure):
            raise value
        if value is None:
            known = any(n == name for n, _ in zone)
            return spf.LookupAnswer([], nxdomain=not known)
        return spf.LookupAnswer(value)

    result = spf.evaluate(start, lookup, max_queries=30, max_depth=6)
    assert len(calls) <= 30
    assert result.queries == len(calls)
    assert result.effective_all in (None, "+", "-", "~", "?")
    assert result.to_dict()["domain"] == start


# ---------------------------------------------------------------------------------------------
# DMARC

DMARC_TOKENS = [
    "v=DMARC1", "v", "DMARC1", ";", "; ", "=", " = ", "p", "sp", "np", "pct", "rua", "ruf",
    "adkim", "aspf", "fo", "rf", "ri", "t", "psd", "none", "quarantine", "reject", "r", "s",
    "y", "n", "u", "0", "1", "d", "100", "101", "4294967296", ":", ",", "afrf", "mailto:",
    "mailto:d@example.com", "https://r.example.com/x", "!", "!10m", "!5k", "!x", "%40", "%zz",
    "@", "example.com", "\t", "é", "foo",
]
DMARC_TEXT = st.one_of(ANY_TEXT, token_text(DMARC_TOKENS, prefix=st.sampled_from(
    ["v=DMARC1; p=none; ", "v=DMARC1;", "v=DMARC1; p=reject; rua=", ""])))


@FUZZ
@given(DMARC_TEXT)
def test_dmarc_parse_never_crashes(text: str) -> None:
    record = parse_or_error(dmarc.parse, text)
    if record is not None:
        assert record.p in ("none", "quarantine", "reject")
        assert 0 <= record.pct <= 100
        parse_or_error(dmarc.external_destinations, "mail.example.com", record)
    dmarc.select_dmarc([text])
    dmarc.is_report_authorization([text])


@FUZZ
@given(st.one_of(ANY_TEXT, token_text(["example", ".", "com", "co.uk", "github.io", "-", "_",
                                        "xn--", "ü", "..", "a" * 63], seps=("", "."))))
def test_organizational_domain_never_crashes(name: str) -> None:
    org = parse_or_error(dmarc.organizational_domain, name)
    if org is not None:
        assert org == org.lower() and not org.endswith(".")


# ---------------------------------------------------------------------------------------------
# DKIM


@functools.cache
def _keys() -> list[str]:
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    return [
        base64.b64encode(rsa_key.public_bytes(der, spki)).decode(),
        base64.b64encode(rsa_key.public_bytes(der, serialization.PublicFormat.PKCS1)).decode(),
        base64.b64encode(ec_key.public_bytes(der, spki)).decode(),
        base64.b64encode(ed.public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)).decode(),
    ]


DKIM_TOKENS = ["v=DKIM1", "v", "k", "h", "n", "p", "s", "t", "=", ";", " ", "rsa", "ed25519",
               "RSA", "x", "sha1", "sha256", ":", "y", "email", "*", "AAAA", "====", "+/",
               "\r\n ", "\t", "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ", "!", "é"]


@st.composite
def dkim_text(draw: st.DrawFn) -> str:
    head = draw(token_text(DKIM_TOKENS))
    key = draw(st.sampled_from(["", *_keys()]))
    if key and draw(st.booleans()):  # damage the key
        cut = draw(st.integers(min_value=0, max_value=len(key)))
        key = key[:cut] + draw(st.sampled_from(["", "A", "==", " ", "!"])) + key[cut + 1:]
    kind = draw(st.sampled_from(["", "k=rsa; ", "k=ed25519; ", "k=foo; "]))
    return f"{draw(st.sampled_from(['v=DKIM1; ', '']))}{kind}{head}; p={key}"


@FUZZ
@given(st.one_of(ANY_TEXT, dkim_text()))
def test_dkim_parse_never_crashes(text: str) -> None:
    record = parse_or_error(dkim.parse, text)
    if record is not None:
        assert record.revoked == (record.public_key == b"")
        if record.key_bits is not None:
            assert record.key_type_known


# ---------------------------------------------------------------------------------------------
# MTA-STS and TLS-RPT

STS_TOKENS = ["v=STSv1", "id", "=", ";", " ", "20240101", "abc", "ext", "x=y", "\t", "é",
              "id=" + "1" * 33]


@FUZZ
@given(st.one_of(ANY_TEXT, token_text(STS_TOKENS, prefix=st.sampled_from(
    ["v=STSv1; ", "v=STSv1;", ""]))))
def test_mtasts_record_never_crashes(text: str) -> None:
    record = parse_or_error(mtasts.parse_record, text)
    if record is not None:
        assert 1 <= len(record.id) <= 32


POLICY_LINES = ["version: STSv1", "version: STSv2", "mode: enforce", "mode: testing",
                "mode: none", "mode: bogus", "mx: mail.example.com", "mx: *.example.net",
                "mx: *.*.x", "mx: ", "mx: 1.2.3.4", "max_age: 86400", "max_age: 31557601",
                "max_age: -5", "max_age: 99999999999", "foo: bar", "", "junk", "é: x",
                "version:STSv1", "x" * 40 + ": y"]


@st.composite
def policy_text(draw: st.DrawFn) -> str | bytes:
    lines = draw(st.lists(st.one_of(st.sampled_from(POLICY_LINES), st.text(max_size=10)),
                          max_size=12))
    body = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    if draw(st.booleans()):
        return body.encode("utf-8", errors="surrogatepass") + draw(st.binary(max_size=3))
    return body


@FUZZ
@given(st.one_of(ANY_TEXT, policy_text(), st.binary()))
def test_mtasts_policy_never_crashes(body: str | bytes) -> None:
    policy = parse_or_error(mtasts.parse_policy, body)
    if policy is not None:
        assert 0 <= policy.max_age <= mtasts.MAX_AGE_LIMIT
        assert policy.mode == "none" or policy.mx
        for pattern in policy.mx:
            assert mtasts.mx_matches(pattern, pattern.replace("*", "x"))


@FUZZ
@given(ANY_TEXT, ANY_TEXT)
def test_mx_matches_never_crashes(pattern: str, host: str) -> None:
    assert mtasts.mx_matches(pattern, host) in (True, False)


TLSRPT_TOKENS = ["v=TLSRPTv1", "rua", "=", ";", ",", " ", "mailto:", "tls@example.com",
                 "https://", "r.example.com", "/x", ":99999", "ftp://x.example.com", "%2C",
                 "%", "ext", "é", "\t"]


@FUZZ
@given(st.one_of(ANY_TEXT, token_text(TLSRPT_TOKENS, prefix=st.sampled_from(
    ["v=TLSRPTv1; rua=", "v=TLSRPTv1;", ""]))))
def test_tlsrpt_never_crashes(text: str) -> None:
    record = parse_or_error(tlsrpt.parse, text)
    if record is not None:
        assert record.rua


# ---------------------------------------------------------------------------------------------
# CAA

CAA_TOKENS = ["letsencrypt.org", "ca.example.net", ";", " ", "=", "accounturi", "https://x/1",
              "validationmethods", "dns-01", ",", "-", "_", "mailto:a@example.com", "é", "\t",
              "policy", "ev", "nope"]


@FUZZ
@given(
    st.one_of(st.integers(min_value=-5, max_value=300), st.just(128), st.just(0)),
    st.one_of(st.sampled_from(["issue", "issuewild", "iodef", "ISSUE", "tbs", "contactemail"]),
              st.text(max_size=17)),
    st.one_of(ANY_TEXT, token_text(CAA_TOKENS), st.binary(max_size=30)),
)
def test_caa_never_crashes(flags: int, tag: str, value: str | bytes) -> None:
    record = parse_or_error(caa.parse, flags, tag, value)
    if record is not None:
        assert record.tag == tag.lower()
    answer = caa.authorizes([(flags, tag, value)], "letsencrypt.org", wildcard=flags % 2 == 0)
    assert answer in (True, False)


# ---------------------------------------------------------------------------------------------
# security.txt

SEC_LINES = ["Contact: mailto:security@example.com", "Contact: security@example.com",
             "Contact: http://example.com", "Expires: 2030-01-01T00:00:00Z",
             "Expires: 2020-01-01T00:00:00Z", "Expires: 2030-02-30T00:00:00Z", "Expires: soon",
             "Preferred-Languages: en, de", "Preferred-Languages: ,", "Policy: https://x.test/",
             "Encryption: openpgp4fpr:abc", "# comment", "", "junk", "- Contact: mailto:a@b.c",
             "-----BEGIN PGP SIGNED MESSAGE-----", "Hash: SHA256",
             "-----BEGIN PGP SIGNATURE-----", "-----END PGP SIGNATURE-----", "X: y", ":", "é: x"]


@st.composite
def security_text(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.one_of(st.sampled_from(SEC_LINES), st.text(max_size=12)),
                          max_size=14))
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines)


@FUZZ
@given(st.one_of(ANY_TEXT, security_text(), st.binary()),
       st.datetimes(timezones=st.sampled_from([dt.UTC, None])))
def test_security_txt_never_crashes(body: str | bytes, now: dt.datetime) -> None:
    result = parse_or_error(securitytxt.parse, body, now=now)
    if result is not None:
        assert result.has_contact or any("Contact" in p for p in result.problems)
        assert result.expires is not None or any("Expires" in p for p in result.problems)


# ---------------------------------------------------------------------------------------------
# TXT, TLSA


@FUZZ
@given(st.lists(st.binary(max_size=255), max_size=4))
def test_join_txt_never_crashes(strings: list[bytes]) -> None:
    text = parse_or_error(txt.join_txt, strings)
    if text is not None:
        assert text.encode() == b"".join(strings)


@FUZZ
@given(st.one_of(ANY_TEXT, token_text(["3", "2", "1", "0", "256", " ", "ab", "abc", "zz"])))
def test_tlsa_parse_record_never_crashes(text: str) -> None:
    parse_or_error(tlsa.parse_record, text)


@FUZZ
@given(
    st.lists(st.builds(tlsa.TlsaRecord, st.integers(0, 255), st.integers(0, 255),
                       st.integers(0, 255), st.binary(max_size=70)), max_size=4),
    st.lists(st.binary(max_size=64), max_size=3),
)
def test_tlsa_match_never_crashes(records: list[tlsa.TlsaRecord], chain: list[bytes]) -> None:
    result = parse_or_error(tlsa.match_chain, records, chain)
    if result is not None:
        assert len(result.matches) == len(records)
    verdict = parse_or_error(tlsa.assess_rollover, records, chain)
    if verdict is not None:
        assert verdict.reason


# ---------------------------------------------------------------------------------------------
# The contract for callers that pass the wrong type: still a ParseError, never a TypeError.


@pytest.mark.parametrize("value", [None, 42, b"v=spf1 -all", ["v=spf1"]])
def test_non_text_input_is_a_parse_error(value: Any) -> None:
    parsers: list[Callable[[Any], object]] = [
        spf.parse, dmarc.parse, dkim.parse, mtasts.parse_record, tlsrpt.parse,
        tlsa.parse_record, dmarc.organizational_domain,
        lambda v: spf.evaluate(v, lambda name, rdtype: spf.LookupAnswer()),
        lambda v: caa.parse(0, v, "x.example"),
    ]
    if not isinstance(value, int):  # an int is a valid CAA flags byte
        parsers.append(lambda v: caa.parse(v, "issue", "x.example"))
    if not isinstance(value, bytes):  # these accept raw bytes on purpose
        parsers += [mtasts.parse_policy,
                    lambda v: securitytxt.parse(v, now=dt.datetime(2025, 1, 1)),
                    lambda v: caa.parse(0, "issue", v),
                    lambda v: txt.join_txt([v])]
    for parser in parsers:
        with pytest.raises(ParseError):
            parser(value)
