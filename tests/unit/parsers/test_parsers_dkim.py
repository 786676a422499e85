"""DKIM key records, with keys generated here by `cryptography`."""

from __future__ import annotations

import base64
import functools
import textwrap

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from watchtower.parsers import ParseError
from watchtower.parsers.dkim import parse

DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


@functools.cache
def rsa_spki(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    return base64.b64encode(key.public_bytes(DER, SPKI)).decode()


@functools.cache
def rsa_pkcs1(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    return base64.b64encode(key.public_bytes(DER, serialization.PublicFormat.PKCS1)).decode()


@functools.cache
def ed25519_raw() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def test_rsa_2048_real_world_record() -> None:
    p = rsa_spki(2048)
    # Published across several TXT strings and re-joined with whitespace inside p=.
    folded = " ".join(textwrap.wrap(p, 200))
    record = parse(f"v=DKIM1; k=rsa; p={folded}")
    assert record.key_type == "rsa" and record.key_type_known
    assert record.key_bits == 2048
    assert not record.revoked and not record.testing and not record.sha1_only
    assert record.version == "DKIM1"
    assert record.public_key == base64.b64decode(p)
    assert record.for_email and record.warnings == ()


@pytest.mark.parametrize("bits", [1024, 3072])
def test_rsa_sizes(bits: int) -> None:
    assert parse(f"p={rsa_spki(bits)}").key_bits == bits


def test_rsa_pkcs1_form_is_accepted() -> None:
    assert parse(f"v=DKIM1; p={rsa_pkcs1(2048)}").key_bits == 2048


def test_ed25519() -> None:
    record = parse(f"v=DKIM1; k=ed25519; p={ed25519_raw()}")
    assert record.key_type == "ed25519" and record.key_bits == 256
    assert len(record.public_key) == 32


def test_revoked() -> None:
    for text in ("v=DKIM1; p=", "v=DKIM1; k=rsa; p= ;", "p="):
        record = parse(text)
        assert record.revoked and record.key_bits is None and record.public_key == b""


def test_unknown_key_type_is_a_field() -> None:
    record = parse("v=DKIM1; k=ecdsa; p=AAAA")
    assert not record.key_type_known and record.key_type == "ecdsa"
    assert record.key_bits is None and record.public_key == b"\x00\x00\x00"
    assert any("k=ecdsa" in w for w in record.warnings)


def test_tags_and_flags() -> None:
    p = rsa_spki(1024)
    record = parse(f"v=DKIM1; h=sha1; k=RSA; n=Note text here; s=email:*; t=y:s; x=1; p={p}")
    assert record.hash_algorithms == ("sha1",) and record.sha1_only
    assert record.key_type == "rsa"
    assert record.notes == "Note text here"
    assert record.service_types == ("email", "*")
    assert record.testing and record.strict
    assert any("unknown tag 'x'" in w for w in record.warnings)
    both = parse(f"h=sha1:sha256; p={p}")
    assert not both.sha1_only and both.hash_algorithms == ("sha1", "sha256")
    unknown_hash = parse(f"h=sha1:md5; s=other; t=z; p={p}")
    assert unknown_hash.sha1_only
    assert not unknown_hash.for_email
    assert unknown_hash.flags == ("z",) and not unknown_hash.testing
    assert any("md5" in w for w in unknown_hash.warnings)


def _other_key_b64(kind: str) -> str:
    if kind == "ec":
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        return base64.b64encode(key.public_bytes(DER, SPKI)).decode()
    if kind == "dsa":
        dkey = dsa.generate_private_key(key_size=1024).public_key()
        return base64.b64encode(dkey.public_bytes(DER, SPKI)).decode()
    ekey = ed25519.Ed25519PrivateKey.generate().public_key()
    return base64.b64encode(ekey.public_bytes(DER, SPKI)).decode()


@pytest.mark.parametrize("kind", ["ec", "dsa", "ed25519-spki"])
def test_rsa_record_with_other_key(kind: str) -> None:
    with pytest.raises(ParseError, match="k=rsa but p= holds a key of another type"):
        parse(f"v=DKIM1; p={_other_key_b64(kind)}")


INVALID = [
    ("", "missing required 'p='"),
    ("v=DKIM1", "missing required 'p='"),
    ("v=DKIM1; k=rsa", "missing required 'p='"),
    ("k=rsa; v=DKIM1; p=", "'v=' must be the first tag"),
    ("v=DKIM2; p=", "version must be 'DKIM1'"),
    ("v=dkim1; p=", "version must be 'DKIM1'"),
    ("v=DKIM1; p=; p=", "duplicate DKIM tag 'p'"),
    ("v=DKIM1; p=AAAA", "not a DER-encoded RSA public key"),
    ("p=!!!!", "not valid base64"),
    ("p=A", "not valid base64"),
    ("p=A===", "not valid base64"),
    ("p====", "not valid base64"),
    ("p=AA=A", "not valid base64"),
    ("k=ed25519; p=AAAA", "Ed25519 key must be 32 bytes, p= has 3"),
    ("k=ed25519; p=" + base64.b64encode(bytes(33)).decode(), "must be 32 bytes"),
    ("k=; p=", "invalid k="),
    ("k=rsa rsa; p=", "invalid k="),
    ("h=; p=", "invalid h="),
    ("h=sha256:; p=", "invalid h="),
    ("t=y::s; p=", "invalid t="),
    ("s=e mail; p=", "invalid s="),
    ("9x=1; p=", "invalid DKIM tag name"),
    ("junk; p=", "element without '='"),
    ("p=\x00", "invalid character"),
    ("n=caf\u00e9; p=", "invalid character"),
]


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_invalid(text: str, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert reason in info.value.reason


def test_tag_names_are_case_sensitive() -> None:
    record = parse("V=DKIM1; P=abc; p=")
    assert record.revoked and record.version is None
    assert any("unknown tag 'V'" in w for w in record.warnings)
