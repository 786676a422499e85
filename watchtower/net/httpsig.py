"""HTTP Signatures as the fediverse uses them (draft-cavage-http-signatures-12), signing and
verifying, with the rules Mastodon applies when it verifies.

Why hand-written: the few lines of draft-cavage that ActivityPub servers use (rsa-sha256 over
`(request-target)`, `host`, `date` and, with a body, `digest`) are smaller than any PyPI
package's surface, and the maintained packages moved to RFC 9421 (`http-message-signatures`,
`requests-http-signature` 2.x), which Mastodon does not accept for fetches. The tests verify what
`sign` produces with an independent implementation (PyPI `httpsig`, a draft-cavage verifier).

What Mastodon checks, from app/controllers/concerns/signature_verification.rb (and
app/lib/signed_request.rb in 4.4+): `verify_signature_strength!` wants `date` or `(created)`
signed, `(request-target)` or `digest` signed, `host` signed on GET and `digest` signed on POST;
`verify_body_digest!` recomputes `SHA-256=` over the body; the Date may be at most 12 hours old
and 1 hour in the future (EXPIRATION_WINDOW_LIMIT, CLOCK_SKEW_MARGIN); the key is the actor's
`publicKey.publicKeyPem` fetched from the keyId URL. `verify` below applies the same rules.

One Mastodon quirk: it builds `(request-target)` from the request *path* alone, without the
query string (its own signer in app/lib/request.rb does the same), while the draft includes
the query. Signed fetches of actors carry no query, so both readings agree; `sign` follows the
draft.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

REQUEST_TARGET = "(request-target)"
#: Mastodon's EXPIRATION_WINDOW_LIMIT and CLOCK_SKEW_MARGIN (signature_verification.rb).
MAX_AGE = dt.timedelta(hours=12)
MAX_SKEW = dt.timedelta(hours=1)
_PARAM = re.compile(r'([a-zA-Z]+)="([^"]*)"')


class SignatureError(ValueError):
    """A signature that does not verify, with Mastodon's reason."""


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM; ValueError (without the key material) otherwise."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the probe actor key must be RSA (rsa-sha256 is what Mastodon verifies)")
    return key


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def body_digest(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def signing_string(method: str, target: str, headers: Mapping[str, str],
                   names: list[str]) -> str:
    """The string a signature covers: one `name: value` line per signed header, in order."""
    lower = {k.lower(): v for k, v in headers.items()}
    lines = []
    for name in names:
        if name == REQUEST_TARGET:
            lines.append(f"{REQUEST_TARGET}: {method.lower()} {target}")
        else:
            lines.append(f"{name}: {lower.get(name, '')}")
    return "\n".join(lines)


def sign(method: str, url: str, key: rsa.RSAPrivateKey, key_id: str, *,
         body: bytes | None = None, now: dt.datetime | None = None) -> dict[str, str]:
    """Headers (Host, Date, Digest with a body, Signature) that make this request signed."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    when = (now or dt.datetime.now(dt.UTC)).timestamp()
    headers = {"Host": parts.netloc.rpartition("@")[2],
               "Date": email.utils.formatdate(when, usegmt=True)}
    names = [REQUEST_TARGET, "host", "date"]
    if body is not None:
        headers["Digest"] = body_digest(body)
        names.append("digest")
    text = signing_string(method, target, headers, names)
    signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    headers["Signature"] = (f'keyId="{key_id}",algorithm="rsa-sha256",'
                            f'headers="{" ".join(names)}",'
                            f'signature="{base64.b64encode(signature).decode()}"')
    return headers


@dataclass(frozen=True, slots=True)
class Verified:
    key_id: str
    headers: tuple[str, ...]


def parse_signature(value: str) -> dict[str, str]:
    return dict(_PARAM.findall(value))


def _check_strength(method: str, names: list[str]) -> None:
    if "date" not in names and "(created)" not in names:
        raise SignatureError("Mastodon requires the Date header or (created) pseudo-header "
                             "to be signed")
    if REQUEST_TARGET not in names and "digest" not in names:
        raise SignatureError("Mastodon requires the Digest header or (request-target) "
                             "pseudo-header to be signed")
    if method.upper() == "GET" and "host" not in names:
        raise SignatureError("Mastodon requires the Host header to be signed when doing a GET "
                             "request")
    if method.upper() == "POST" and "digest" not in names:
        raise SignatureError("Mastodon requires the Digest header to be signed when doing a "
                             "POST request")


def _check_date(headers: Mapping[str, str], now: dt.datetime) -> None:
    value = headers.get("date")
    if value is None:
        return
    try:
        sent = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise SignatureError("Invalid Date header") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=dt.UTC)
    if now - sent > MAX_AGE or sent - now > MAX_SKEW:
        raise SignatureError("Signed request date outside acceptable time window")


def verify(method: str, target: str, headers: Mapping[str, str], body: bytes,
           public_key_for: Callable[[str], str], *, now: dt.datetime | None = None) -> Verified:
    """Verify a request's draft-cavage signature the way Mastodon does; `public_key_for(keyId)`
    returns the signer's PEM public key (raising SignatureError when it cannot)."""
    lower = {k.lower(): v for k, v in headers.items()}
    raw = lower.get("signature")
    if not raw:
        raise SignatureError("Request not signed")
    params = parse_signature(raw)
    if not params.get("keyId") or not params.get("signature"):
        raise SignatureError("Incompatible request signature")
    algorithm = params.get("algorithm", "hs2019")
    if algorithm not in ("rsa-sha256", "hs2019"):
        raise SignatureError(f"Unsupported signature algorithm {algorithm}")
    names = params.get("headers", "(created)" if algorithm == "hs2019" else "date").lower().split()
    _check_strength(method, names)
    _check_date(lower, now or dt.datetime.now(dt.UTC))
    if "digest" in names:
        given = dict(p.split("=", 1) for p in lower.get("digest", "").split(",") if "=" in p)
        if {k.lower(): v for k, v in given.items()}.get("sha-256") != body_digest(body)[8:]:
            raise SignatureError("Invalid Digest value")
    pem = public_key_for(params["keyId"])
    try:
        key = serialization.load_pem_public_key(pem.encode())
        signature = base64.b64decode(params["signature"], validate=True)
    except (ValueError, TypeError):
        raise SignatureError(f"Public key not usable for key {params['keyId']}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("Only RSA keys are supported")
    text = signing_string(method, target, lower, names)
    try:
        key.verify(signature, text.encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureError(f"Verification failed for {params['keyId']}") from None
    return Verified(params["keyId"], tuple(names))
