"""DANE TLSA matching for SMTP (RFC 6698, RFC 7671 operational updates, RFC 7672 for SMTP).

Feeds `mail.dane`: "fail TLSA present but no record matches the served certificate; warn no
rollover-safe pair". Given the TLSA records at `_25._tcp.<mx>` and the chain the MX served in
STARTTLS (DER, leaf first), `match_chain` says which record matches what, and
`assess_rollover` says whether the published set survives the next key or certificate change.

What counts, per RFC 7672 3.1: only DANE-EE(3) and DANE-TA(2) are usable for SMTP. PKIX-TA(0) and
PKIX-EE(1) are "unusable" there (senders have no agreed trust store), as are unknown usages,
selectors and matching types, and digests of the wrong length; a set where every record is
unusable behaves as if there were no TLSA. DANE-EE matches the leaf alone (names and dates are
ignored); DANE-TA matches a certificate the server sent above the leaf, and the chain from the
leaf up to it must verify (each certificate signed by the next).

Not done here, because they need more than the records and the chain: DNSSEC validation of the
TLSA RRset (the check asks the resolver for the AD bit) and, for DANE-TA, the name check of the
leaf against the MX host (the `mail.smtp.certificate` check does it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from watchtower.parsers import ParseError

__all__ = [
    "RolloverAssessment",
    "TlsaMatch",
    "TlsaRecord",
    "TlsaResult",
    "assess_rollover",
    "match_chain",
    "parse_record",
]

DANE_TA, DANE_EE = 2, 3
PKIX_TA, PKIX_EE = 0, 1
_DIGEST_LENGTH = {1: 32, 2: 64}
_USAGE_NAMES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}


@dataclass(frozen=True, slots=True)
class TlsaRecord:
    """One TLSA rdata: certificate usage, selector, matching type and association data."""

    usage: int
    selector: int
    mtype: int
    data: bytes

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"

    def unusable_reason(self, *, smtp: bool = True) -> str | None:
        """Why a client must ignore this record, or None when it is usable."""
        if self.usage not in _USAGE_NAMES:
            return f"unknown certificate usage {self.usage}"
        if smtp and self.usage in (PKIX_TA, PKIX_EE):
            return (f"{_USAGE_NAMES[self.usage]}({self.usage}) is unusable for SMTP "
                    "(RFC 7672 3.1.3)")
        if self.selector not in (0, 1):
            return f"unknown selector {self.selector}"
        if self.mtype not in (0, 1, 2):
            return f"unknown matching type {self.mtype}"
        want = _DIGEST_LENGTH.get(self.mtype)
        if want is not None and len(self.data) != want:
            return f"matching type {self.mtype} needs {want} bytes, data has {len(self.data)}"
        if not self.data:
            return "empty association data"
        return None


def parse_record(text: str) -> TlsaRecord:
    """Parse TLSA presentation format: `3 1 1 <hex>` (the hex may contain spaces)."""
    if not isinstance(text, str):
        raise ParseError("TLSA record must be text")
    parts = text.split()
    if len(parts) < 4:
        raise ParseError("TLSA record needs usage, selector, matching type and data",
                         term=text[:40])
    numbers: list[int] = []
    for name, part in zip(("usage", "selector", "matching type"), parts[:3], strict=True):
        if not re.fullmatch(r"[0-9]{1,3}", part) or int(part) > 255:
            raise ParseError(f"TLSA {name} must be 0..255, not {part!r}", term=text[:40])
        numbers.append(int(part))
    hex_text = "".join(parts[3:])
    if not re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", hex_text):
        raise ParseError("TLSA data must be an even number of hex digits", term=text[:40])
    return TlsaRecord(numbers[0], numbers[1], numbers[2], bytes.fromhex(hex_text))


@dataclass(frozen=True, slots=True)
class TlsaMatch:
    """How one record fared: `match` (at chain `depth`, 0 = leaf), `mismatch` or `unusable`."""

    record: TlsaRecord
    status: Literal["match", "mismatch", "unusable"]
    reason: str
    depth: int | None = None


@dataclass(frozen=True, slots=True)
class TlsaResult:
    matches: tuple[TlsaMatch, ...]

    @property
    def usable(self) -> tuple[TlsaMatch, ...]:
        return tuple(m for m in self.matches if m.status != "unusable")

    @property
    def matched(self) -> bool:
        """At least one usable record matches: the connection would authenticate."""
        return any(m.status == "match" for m in self.matches)

    @property
    def all_unusable(self) -> bool:
        """Every record is unusable: RFC 7672 2.2 treats the RRset as absent (TLS still on)."""
        return bool(self.matches) and not self.usable


@dataclass(frozen=True, slots=True)
class _Cert:
    der: bytes
    spki: bytes
    cert: x509.Certificate


def _load_chain(chain: Sequence[bytes]) -> list[_Cert]:
    if not chain:
        raise ParseError("empty certificate chain")
    out: list[_Cert] = []
    for index, der in enumerate(chain):
        try:
            cert = x509.load_der_x509_certificate(bytes(der))
            spki = cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        except Exception:  # cryptography raises several types on hostile DER
            raise ParseError(f"certificate {index} of the chain is not valid DER",
                             position=index) from None
        out.append(_Cert(bytes(der), spki, cert))
    return out


def _digest(mtype: int, data: bytes) -> bytes:
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return data


def _matches(record: TlsaRecord, cert: _Cert) -> bool:
    content = cert.der if record.selector == 0 else cert.spki
    return _digest(record.mtype, content) == record.data


def _chain_problem(certs: list[_Cert], depth: int) -> str | None:
    """Why the chain from the leaf up to `depth` does not verify, or None when it does."""
    for index in range(depth):
        child, parent = certs[index].cert, certs[index + 1].cert
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, InvalidSignature):
            return f"certificate {index} is not issued by certificate {index + 1}"
        except Exception:  # noqa: S112 - an algorithm the library cannot check: do not guess
            continue
    return None


def match_chain(records: Iterable[TlsaRecord], chain: Sequence[bytes], *,
                smtp: bool = True) -> TlsaResult:
    """Match each TLSA record against the served chain (DER certificates, leaf first).

    ParseError when the chain is empty or holds something that is not a certificate.
    """
    certs = _load_chain(chain)
    results: list[TlsaMatch] = []
    for record in records:
        reason = record.unusable_reason(smtp=smtp)
        if reason is not None:
            results.append(TlsaMatch(record, "unusable", reason))
            continue
        name = _USAGE_NAMES[record.usage]
        if record.usage in (DANE_EE, PKIX_EE):
            if _matches(record, certs[0]):
                results.append(TlsaMatch(record, "match", f"{name} matches the leaf", 0))
            else:
                results.append(TlsaMatch(record, "mismatch",
                                         f"{name} does not match the leaf certificate"))
            continue
        # DANE-TA / PKIX-TA: a certificate above the leaf that the server sent.
        depth = next((i for i in range(1, len(certs)) if _matches(record, certs[i])), None)
        if depth is None:
            hint = "" if len(certs) > 1 else " (the server sent no intermediate)"
            results.append(TlsaMatch(record, "mismatch",
                                     f"{name} matches no certificate above the leaf{hint}"))
            continue
        problem = _chain_problem(certs, depth)
        if problem is not None:
            results.append(TlsaMatch(record, "mismatch",
                                     f"{name} matches certificate {depth} but {problem}",
                                     depth))
        else:
            results.append(TlsaMatch(record, "match",
                                     f"{name} matches certificate {depth} of the chain", depth))
    return TlsaResult(tuple(results))


@dataclass(frozen=True, slots=True)
class RolloverAssessment:
    """Whether the TLSA set survives the next key/certificate change, and why (not)."""

    safe: bool
    reason: str
    notes: tuple[str, ...] = ()


def assess_rollover(records: Iterable[TlsaRecord],
                    chain: Sequence[bytes] | None = None) -> RolloverAssessment:
    """Judge rollover safety (RFC 7671 8.1, 8.4; RFC 7672 3.1).

    Safe means: something matches today, and something else will match after the next change.
    Either a second DANE-EE/DANE-TA record for the *next* key is published beside the current
    one ("current + next"), or the current certificate is matched both as DANE-EE(3) and via
    its issuer as DANE-TA(2), so a leaf key change and a CA change can each be survived by the
    other record. Without the chain, only the count of distinct usable records can be judged.
    """
    records = list(records)
    usable = list(dict.fromkeys(r for r in records if r.unusable_reason() is None))
    notes: list[str] = []
    if any(r.usage == DANE_EE and r.selector == 0 for r in usable):
        notes.append("'3 0 x' pins the whole certificate, which changes at every renewal even "
                     "with the same key; '3 1 1' (the key) is recommended (RFC 7671 5.1)")
    if not usable:
        return RolloverAssessment(False, "no usable DANE-EE(3) or DANE-TA(2) record",
                                  tuple(notes))
    if len(usable) < 2:
        return RolloverAssessment(
            False, f"only one usable record ({usable[0]}): publish the next key's record "
                   "beside it before every change (RFC 7671 8.1)", tuple(notes))
    if chain is None:
        return RolloverAssessment(
            True, f"{len(usable)} usable records (not checked against the served chain)",
            tuple(notes))
    result = match_chain(usable, chain)
    matching = [m.record for m in result.matches if m.status == "match"]
    others = [m.record for m in result.matches if m.status != "match"]
    if not matching:
        return RolloverAssessment(False, "no record matches the served chain", tuple(notes))
    if others:
        return RolloverAssessment(
            True, f"{len(matching)} record(s) match the served chain and {len(others)} more "
                  "are published for the next key or certificate", tuple(notes))
    usages = {r.usage for r in matching}
    if usages == {DANE_EE, DANE_TA}:
        return RolloverAssessment(
            True, "the chain is matched both as DANE-EE(3) and as DANE-TA(2): either survives "
                  "a change of the other", tuple(notes))
    return RolloverAssessment(
        False, "every record matches the current chain and none the next one: a key or CA "
               "change will break DANE until the new record is published and cached",
        tuple(notes))
