"""DANE TLSA matching against a chain generated here (root -> intermediate -> leaf)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from watchtower.parsers import ParseError
from watchtower.parsers.tlsa import TlsaRecord, assess_rollover, match_chain, parse_record

DER = serialization.Encoding.DER


@dataclass(frozen=True)
class Pki:
    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    other_ca: x509.Certificate
    next_leaf_key: ec.EllipticCurvePrivateKey

    def der(self, cert: x509.Certificate) -> bytes:
        return cert.public_bytes(DER)


def _cert(cn: str, key: ec.EllipticCurvePrivateKey, issuer_name: x509.Name,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool) -> x509.Certificate:
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


@functools.cache
def pki() -> Pki:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Root")])
    root = _cert("Test Root", root_key, root_name, root_key, ca=True)
    int_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = _cert("Test Intermediate", int_key, root.subject, root_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("mx.example.com", leaf_key, intermediate.subject, int_key, ca=False)
    other_key = ec.generate_private_key(ec.SECP256R1())
    # Same subject as the intermediate but another key: name chaining alone would accept it.
    other_ca = _cert("Test Intermediate", other_key, root.subject, other_key, ca=True)
    return Pki(root, intermediate, leaf, other_ca, ec.generate_private_key(ec.SECP256R1()))


def spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def rec(usage: int, selector: int, mtype: int, cert: x509.Certificate) -> TlsaRecord:
    content = cert.public_bytes(DER) if selector == 0 else spki(cert)
    data = {0: content, 1: hashlib.sha256(content).digest(),
            2: hashlib.sha512(content).digest()}[mtype]
    return TlsaRecord(usage, selector, mtype, data)


def served(*certs: x509.Certificate) -> list[bytes]:
    return [c.public_bytes(DER) for c in certs]


def test_dane_ee_all_selectors_and_types() -> None:
    p = pki()
    chain = served(p.leaf, p.intermediate)
    for selector in (0, 1):
        for mtype in (0, 1, 2):
            result = match_chain([rec(3, selector, mtype, p.leaf)], chain)
            assert result.matched, (selector, mtype)
            assert result.matches[0].depth == 0
            assert "DANE-EE matches the leaf" in result.matches[0].reason


def test_dane_ee_mismatch() -> None:
    p = pki()
    result = match_chain([rec(3, 1, 1, p.intermediate)], served(p.leaf, p.intermediate))
    assert not result.matched
    assert result.matches[0].status == "mismatch"
    assert not result.all_unusable and len(result.usable) == 1


def test_dane_ta_intermediate_and_root() -> None:
    p = pki()
    result = match_chain([rec(2, 1, 1, p.intermediate)], served(p.leaf, p.intermediate))
    assert result.matched and result.matches[0].depth == 1
    full = served(p.leaf, p.intermediate, p.root)
    root = match_chain([rec(2, 0, 1, p.root)], full)
    assert root.matched and root.matches[0].depth == 2
    assert "certificate 2" in root.matches[0].reason


def test_dane_ta_not_served() -> None:
    p = pki()
    result = match_chain([rec(2, 0, 1, p.root)], served(p.leaf, p.intermediate))
    assert not result.matched
    assert "matches no certificate above the leaf" in result.matches[0].reason
    alone = match_chain([rec(2, 0, 1, p.root)], served(p.leaf))
    assert "the server sent no intermediate" in alone.matches[0].reason


def test_dane_ta_chain_must_verify() -> None:
    p = pki()
    result = match_chain([rec(2, 1, 1, p.other_ca)], served(p.leaf, p.other_ca))
    assert not result.matched
    assert "certificate 0 is not issued by certificate 1" in result.matches[0].reason
    assert result.matches[0].depth == 1


def test_dane_ta_leaf_is_not_a_trust_anchor() -> None:
    p = pki()
    assert not match_chain([rec(2, 1, 1, p.leaf)], served(p.leaf, p.intermediate)).matched


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (TlsaRecord(1, 1, 1, bytes(32)), "PKIX-EE(1) is unusable for SMTP"),
        (TlsaRecord(0, 1, 1, bytes(32)), "PKIX-TA(0) is unusable for SMTP"),
        (TlsaRecord(4, 1, 1, bytes(32)), "unknown certificate usage 4"),
        (TlsaRecord(3, 2, 1, bytes(32)), "unknown selector 2"),
        (TlsaRecord(3, 1, 3, bytes(32)), "unknown matching type 3"),
        (TlsaRecord(3, 1, 1, bytes(31)), "needs 32 bytes, data has 31"),
        (TlsaRecord(3, 1, 2, bytes(32)), "needs 64 bytes"),
        (TlsaRecord(3, 1, 0, b""), "empty association data"),
    ],
)
def test_unusable(record: TlsaRecord, reason: str) -> None:
    p = pki()
    result = match_chain([record], served(p.leaf))
    assert result.matches[0].status == "unusable"
    assert reason in result.matches[0].reason
    assert result.all_unusable and not result.matched


def test_pkix_usages_outside_smtp() -> None:
    p = pki()
    chain = served(p.leaf, p.intermediate)
    assert match_chain([rec(1, 1, 1, p.leaf)], chain, smtp=False).matched
    assert match_chain([rec(0, 1, 1, p.intermediate)], chain, smtp=False).matched
    assert not match_chain([rec(1, 1, 1, p.leaf)], chain).matched


def test_mixed_set() -> None:
    p = pki()
    records = [TlsaRecord(1, 1, 1, bytes(32)), rec(3, 1, 1, p.leaf),
               TlsaRecord(3, 1, 1, bytes(32))]
    result = match_chain(records, served(p.leaf))
    assert [m.status for m in result.matches] == ["unusable", "match", "mismatch"]
    assert result.matched and len(result.usable) == 2
    assert match_chain([], served(p.leaf)).all_unusable is False


@pytest.mark.parametrize(("chain", "reason"), [
    ([], "empty certificate chain"),
    ([b"not a certificate"], "certificate 0 of the chain is not valid DER"),
])
def test_bad_chain(chain: list[bytes], reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        match_chain([TlsaRecord(3, 1, 1, bytes(32))], chain)


def test_bad_chain_second_certificate() -> None:
    p = pki()
    with pytest.raises(ParseError, match="certificate 1") as info:
        match_chain([], [p.der(p.leaf), b"\x30\x03\x02\x01\x00"])
    assert info.value.position == 1


def test_parse_record() -> None:
    record = parse_record("3 1 1 0123456789abcdef 0123456789ABCDEF")
    assert record == TlsaRecord(3, 1, 1, bytes.fromhex("0123456789abcdef0123456789abcdef"))
    assert str(record) == "3 1 1 0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("text", "reason"), [
    ("3 1 1", "needs usage, selector"),
    ("", "needs usage"),
    ("3 1 x ab", "matching type must be 0..255"),
    ("256 1 1 ab", "usage must be 0..255"),
    ("3 -1 1 ab", "selector must be"),
    ("3 1 1 abc", "even number of hex digits"),
    ("3 1 1 zz", "even number of hex digits"),
])
def test_parse_record_invalid(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_record(text)


def _next_key_record() -> TlsaRecord:
    content = pki().next_leaf_key.public_key().public_bytes(
        DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return TlsaRecord(3, 1, 1, hashlib.sha256(content).digest())


def test_rollover_current_plus_next() -> None:
    p = pki()
    verdict = assess_rollover([rec(3, 1, 1, p.leaf), _next_key_record()],
                              served(p.leaf, p.intermediate))
    assert verdict.safe and "1 more are published" in verdict.reason
    assert verdict.notes == ()


def test_rollover_ee_plus_ta() -> None:
    p = pki()
    verdict = assess_rollover([rec(3, 1, 1, p.leaf), rec(2, 1, 1, p.intermediate)],
                              served(p.leaf, p.intermediate))
    assert verdict.safe and "both as DANE-EE(3) and as DANE-TA(2)" in verdict.reason


def test_rollover_unsafe_cases() -> None:
    p = pki()
    chain = served(p.leaf, p.intermediate)
    single = assess_rollover([rec(3, 1, 1, p.leaf)], chain)
    assert not single.safe and "only one usable record" in single.reason
    twins = assess_rollover([rec(3, 1, 1, p.leaf), rec(3, 0, 1, p.leaf)], chain)
    assert not twins.safe and "none the next one" in twins.reason
    assert any("'3 1 1' (the key) is recommended" in n for n in twins.notes)
    stale = assess_rollover([_next_key_record(), TlsaRecord(3, 1, 1, bytes(32))], chain)
    assert not stale.safe and "no record matches" in stale.reason
    none = assess_rollover([TlsaRecord(1, 1, 1, bytes(32))], chain)
    assert not none.safe and "no usable" in none.reason
    dup = assess_rollover([rec(3, 1, 1, p.leaf), rec(3, 1, 1, p.leaf)], chain)
    assert not dup.safe and "only one usable record" in dup.reason


def test_rollover_without_chain() -> None:
    p = pki()
    verdict = assess_rollover([rec(3, 1, 1, p.leaf), _next_key_record()])
    assert verdict.safe and "not checked against the served chain" in verdict.reason
