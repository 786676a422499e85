"""DKIM public key records (RFC 6376 3.6.1, RFC 8463 for Ed25519, RFC 8301 for key sizes).

Feeds `mail.dkim` (and `mail.dkim.key-match`, which compares `public_key` with the host's key).

`parse(text)` reads the TXT record at `<selector>._domainkey.<domain>` and decodes `p=`, so the
check can judge key type and size without touching cryptography itself.

Design decisions, each so that a *record* problem becomes a finding with a precise reason rather
than a crash:

- Empty `p=` is not an error: RFC 6376 3.6.1 defines it as "this key has been revoked". The
  result has `revoked=True` and no key; the check fails it as "revoked".
- An unknown `k=` is not an error either: the tag's grammar admits extension values
  (`x-key-k-tag-type`), so the record is well-formed, only unusable by today's verifiers. The
  result has `key_type_known=False` and the raw `p=` bytes; the check fails it as "unknown k=".
  Deciding it there keeps the reason ("k=ecdsa is not a DKIM key type") in the verdict, where
  the report can cite RFC 8463, instead of burying it in a parse error.
- What *is* a ParseError: a tag list that breaks RFC 6376 3.2 (duplicate tags, bad names),
  `v=` present but not first or not `DKIM1`, missing `p=`, `p=` that is not base64, and `p=`
  whose bytes are not a key of the declared type (an RSA record whose `p=` is no RSA key; an
  Ed25519 key that is not 32 bytes). No verifier can use such a record.

Unknown tags are ignored, as RFC 6376 3.2 requires, and listed in `warnings`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from watchtower.parsers import ParseError
from watchtower.parsers._common import Tag, check_tag_list_text, parse_tag_list

__all__ = ["KNOWN_HASHES", "KNOWN_KEY_TYPES", "DkimKey", "parse"]

KNOWN_KEY_TYPES = frozenset({"rsa", "ed25519"})
KNOWN_HASHES = frozenset({"sha1", "sha256"})
KNOWN_TAGS = frozenset({"v", "h", "k", "n", "p", "s", "t"})
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_KEY_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_STAR_OR_NAME = re.compile(r"\*|[A-Za-z0-9][A-Za-z0-9-]*")
_FWS = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A DKIM key record.

    `hash_algorithms` is None when `h=` is absent (all algorithms allowed). `key_type` is the
    `k=` value lower-cased ("rsa" by default); `key_bits` is the RSA modulus size or 256 for
    Ed25519, None when revoked or of an unknown type. `service_types` defaults to ("*",).
    `testing` is the `t=y` flag, `strict` the `t=s` flag (the `i=` domain must equal `d=`).
    """

    text: str
    key_type: str = "rsa"
    key_type_known: bool = True
    public_key: bytes = b""
    revoked: bool = False
    key_bits: int | None = None
    version: str | None = None
    hash_algorithms: tuple[str, ...] | None = None
    notes: str | None = None
    service_types: tuple[str, ...] = ("*",)
    flags: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def testing(self) -> bool:
        return "y" in self.flags

    @property
    def strict(self) -> bool:
        return "s" in self.flags

    @property
    def sha1_only(self) -> bool:
        """`h=` restricts signing to SHA-1, which RFC 8301 forbids verifiers to accept."""
        if self.hash_algorithms is None:
            return False
        return {h for h in self.hash_algorithms if h in KNOWN_HASHES} == {"sha1"}

    @property
    def for_email(self) -> bool:
        return "*" in self.service_types or "email" in self.service_types


def parse(text: str) -> DkimKey:
    """Parse a DKIM key record (TXT strings already joined); see the module doc for the rules."""
    check_tag_list_text(text, "DKIM")
    warnings: list[str] = []
    tags = parse_tag_list(text, what="DKIM", fold_names=False, warnings=warnings,
                          name_pattern=_TAG_NAME)
    values = {tag.name: tag for tag in tags}
    version = _version(values.get("v"), tags)
    hashes = _hashes(values.get("h"), warnings)
    key_type = _key_type(values.get("k"))
    services = _colon_list(values["s"], allow_star=True) if "s" in values else ("*",)
    flags = _colon_list(values["t"]) if "t" in values else ()
    notes = values["n"].value if "n" in values else None
    if "p" not in values:
        raise ParseError("missing required 'p=' tag")
    p_tag = values["p"]
    key = _public_key(p_tag)
    warnings += [f"unknown tag {tag.name!r} is ignored" for tag in tags
                 if tag.name not in KNOWN_TAGS]
    known = key_type in KNOWN_KEY_TYPES
    revoked = not key
    bits = _key_bits(key_type, key, p_tag.position) if not revoked and known else None
    if not known:
        warnings.append(f"k={key_type} is not a DKIM key type verifiers know (rsa, ed25519)")
    return DkimKey(
        text=text,
        key_type=key_type,
        key_type_known=known,
        public_key=key,
        revoked=revoked,
        key_bits=bits,
        version=version,
        hash_algorithms=hashes,
        notes=notes,
        service_types=services,
        flags=flags,
        warnings=tuple(warnings),
    )


def _version(tag: Tag | None, tags: list[Tag]) -> str | None:
    """v= is optional; when present it is the first tag and says DKIM1 (RFC 6376 3.6.1)."""
    if tag is None:
        return None
    if tags[0].name != "v":
        raise ParseError("'v=' must be the first tag when present (RFC 6376 3.6.1)",
                         position=tag.position, term=f"v={tag.value}")
    if tag.value != "DKIM1":
        raise ParseError(f"version must be 'DKIM1', not {tag.value!r}",
                         position=tag.position, term=f"v={tag.value}")
    return tag.value


def _hashes(tag: Tag | None, warnings: list[str]) -> tuple[str, ...] | None:
    """h=: the hash algorithms the key may sign with (None: all); unknown ones are warned."""
    if tag is None:
        return None
    hashes = _colon_list(tag)
    unknown = [h for h in hashes if h not in KNOWN_HASHES]
    if unknown:
        warnings.append(f"h= lists unknown hash algorithms: {', '.join(unknown)}")
    return hashes


def _key_type(tag: Tag | None) -> str:
    """k=, lower-cased; "rsa" when absent. An unknown but well-formed type is not an error."""
    if tag is None:
        return "rsa"
    if not _KEY_TYPE.fullmatch(tag.value):
        raise ParseError(f"invalid k={tag.value!r}", position=tag.position,
                         term=f"k={tag.value}")
    return tag.value.lower()


def _public_key(tag: Tag) -> bytes:
    """The decoded p= (empty: revoked); white space inside the base64 is allowed."""
    compact = _FWS.sub("", tag.value)
    if (not _BASE64.match(compact) or len(compact) % 4 == 1
            or (compact and not compact.strip("="))):
        raise ParseError("p= is not valid base64", position=tag.position,
                         term=f"p={tag.value[:24]}")
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("p= is not valid base64", position=tag.position,
                         term=f"p={tag.value[:24]}") from None


def _colon_list(tag: Tag, *, allow_star: bool = False) -> tuple[str, ...]:
    """h=, s=, t=: colon-separated names (s= also takes '*'), lower-cased."""
    items = [item.strip(" \t\r\n") for item in tag.value.split(":")]
    pattern = _STAR_OR_NAME if allow_star else _NAME
    if any(not pattern.fullmatch(item) for item in items):
        raise ParseError(f"invalid {tag.name}={tag.value!r} (colon-separated names)",
                         position=tag.position, term=f"{tag.name}={tag.value}")
    return tuple(item.lower() for item in items)


def _key_bits(key_type: str, key: bytes, position: int) -> int:
    """Size in bits of a decoded key of a known type; ParseError if it is not such a key."""
    if key_type == "ed25519":
        # RFC 8463 3: the raw 32-byte public key, not wrapped in SubjectPublicKeyInfo.
        if len(key) != 32:
            raise ParseError(f"Ed25519 key must be 32 bytes, p= has {len(key)}",
                             position=position, term="p=")
        return 256
    from cryptography.hazmat.primitives.asymmetric import rsa

    loaded = _load_public_key(key)
    if loaded is None:
        raise ParseError("p= is not a DER-encoded RSA public key", position=position,
                         term="p=")
    if not isinstance(loaded, rsa.RSAPublicKey):
        kind = type(loaded).__name__.removeprefix("_").replace("PublicKey", "")
        raise ParseError(f"k=rsa but p= holds a key of another type ({kind})",
                         position=position, term="p=")
    return int(loaded.key_size)


def _load_public_key(der: bytes) -> object | None:
    """Load SubjectPublicKeyInfo, or a bare PKCS#1 RSAPublicKey; None when it is neither.

    RFC 6376 3.6.1 says RSAPublicKey, but signers publish SubjectPublicKeyInfo and verifiers
    accept both; so do we. Every exception is caught on purpose: hostile DER may make the
    library raise its own types (UnsupportedAlgorithm), and a bad key is a finding, not a crash.
    """
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_der_public_key(der)
    except Exception:  # noqa: S110 - fall through to the PKCS#1 form
        pass
    pem = (b"-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(der)
           + b"-----END RSA PUBLIC KEY-----\n")
    try:
        return serialization.load_pem_public_key(pem)
    except Exception:
        return None
