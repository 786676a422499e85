"""Signing a request with a body (a POST to an inbox): the Digest header is computed, signed,
and checked the way Mastodon checks it (draft-cavage HTTP signatures, RFC 3230 Digest)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from watchtower.net import httpsig

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_ID = "https://probe.example/actor#main-key"
URL = "https://social.example/users/alice/inbox"
BODY = b'{"type": "Follow", "actor": "https://probe.example/actor"}'
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def _pem(_key_id: str) -> str:
    return httpsig.public_pem(KEY)


def test_a_signed_post_carries_the_body_digest_and_signs_it() -> None:
    headers = httpsig.sign("POST", URL, KEY, KEY_ID, body=BODY, now=NOW)
    expected = "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert headers["Digest"] == expected
    assert 'headers="(request-target) host date digest"' in headers["Signature"]
    verified = httpsig.verify("POST", "/users/alice/inbox", headers, BODY, _pem, now=NOW)
    assert verified.key_id == KEY_ID and "digest" in verified.headers


def test_a_body_changed_after_signing_is_refused() -> None:
    headers = httpsig.sign("POST", URL, KEY, KEY_ID, body=BODY, now=NOW)
    with pytest.raises(httpsig.SignatureError, match="Invalid Digest value"):
        httpsig.verify("POST", "/users/alice/inbox", headers, BODY + b" ", _pem, now=NOW)


def test_a_post_signed_without_a_digest_is_refused_as_mastodon_does() -> None:
    headers = httpsig.sign("POST", URL, KEY, KEY_ID, now=NOW)  # no body given: no Digest
    with pytest.raises(httpsig.SignatureError, match="Digest header to be signed"):
        httpsig.verify("POST", "/users/alice/inbox", headers, BODY, _pem, now=NOW)
