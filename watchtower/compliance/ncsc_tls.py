"""The grading tables of the NCSC-NL TLS guidelines, edition 2025-05, in one place.

Source: "ICT-beveiligingsrichtlijnen voor Transport Layer Security (TLS)", NCSC-NL, version
2025-05 (the edition internet.nl applies since its release 1.11). Each table names the
guideline section it comes from; a value a table does not name gets the table's default level,
which for every security table is "insufficient", as the guideline says of anything it does
not list. The 2021 edition (2.1) grades differently: TLS 1.0/1.1 and suites without forward
secrecy were "phase out" there and are "insufficient" here; RSA-2048 certificates and the
ffdhe3072 group were "sufficient" there and are "phase out" here.

Names: TLS versions as Python's ssl module spells them ("TLSv1.2"), cipher suites by their IANA
names, groups by their IANA TLS Supported Groups names, hash functions in lower case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

GUIDELINE = "NCSC-NL ICT-beveiligingsrichtlijnen voor TLS, 2025-05"


class Level(StrEnum):
    """The guideline's four security levels, best first."""

    GOOD = "good"
    SUFFICIENT = "sufficient"
    PHASE_OUT = "phase out"
    INSUFFICIENT = "insufficient"

    @property
    def rank(self) -> int:
        """0 for good ... 3 for insufficient: the worst of several is the highest rank."""
        return list(Level).index(self)

    @property
    def passes(self) -> bool:
        """Good and sufficient settings meet the guideline; the others do not (yet)."""
        return self in (Level.GOOD, Level.SUFFICIENT)

    @staticmethod
    def worst(levels: list[Level], default: Level | None = None) -> Level:
        return max(levels, key=lambda lv: lv.rank, default=default or Level.GOOD)


@dataclass(frozen=True, slots=True)
class Table:
    """One grading table of the guideline: value -> level, with the section it comes from."""

    section: str
    levels: Mapping[str, Level]
    default: Level = Level.INSUFFICIENT
    aliases: Mapping[str, str] = field(default_factory=dict)

    def grade(self, value: str) -> Level:
        key = self.aliases.get(value, value)
        return self.levels.get(key, self.default)


def _table(section: str, default: Level = Level.INSUFFICIENT,
           aliases: Mapping[str, str] | None = None, **by_level: tuple[str, ...]) -> Table:
    levels = {name: Level(lv.replace("_", " ")) for lv, names in by_level.items()
              for name in names}
    return Table(section, levels, default, dict(aliases or {}))


#: 3.3.1: TLS versions. SSL 2.0/3.0 and TLS 1.0/1.1 are insufficient (default).
VERSIONS = _table("3.3.1", good=("TLSv1.3",), sufficient=("TLSv1.2",))

#: The versions a full scan asks for, oldest first.
SCANNED_VERSIONS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

_AEAD_ECDHE_SUFFICIENT = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)


def _phase_out_suites() -> tuple[str, ...]:
    """Appendix B's phase-out suites: DHE with AEAD or SHA-2 CBC, and ECDHE with SHA-2 CBC
    or ARIA/Camellia. Spelled out by construction, checked name by name in the unit tests."""
    dhe = [f"TLS_DHE_RSA_WITH_{c}" for c in (
        "AES_128_CBC_SHA256", "AES_128_CCM", "AES_128_GCM_SHA256", "AES_256_CBC_SHA256",
        "AES_256_CCM", "AES_256_GCM_SHA384", "ARIA_128_CBC_SHA256", "ARIA_128_GCM_SHA256",
        "ARIA_256_CBC_SHA384", "ARIA_256_GCM_SHA384", "CAMELLIA_128_CBC_SHA256",
        "CAMELLIA_128_GCM_SHA256", "CAMELLIA_256_CBC_SHA256", "CAMELLIA_256_GCM_SHA384",
        "CHACHA20_POLY1305_SHA256")]
    ecdhe = [f"TLS_ECDHE_{auth}_WITH_{c}" for auth in ("ECDSA", "RSA") for c in (
        "AES_128_CBC_SHA256", "AES_256_CBC_SHA384", "ARIA_128_CBC_SHA256", "ARIA_128_GCM_SHA256",
        "ARIA_256_CBC_SHA384", "ARIA_256_GCM_SHA384", "CAMELLIA_128_CBC_SHA256",
        "CAMELLIA_128_GCM_SHA256", "CAMELLIA_256_CBC_SHA384", "CAMELLIA_256_GCM_SHA384")]
    return tuple(dhe + ecdhe)


#: 3.3.2-3.3.5 and appendix B: cipher suites. Everything not listed (RSA key exchange, SHA-1
#: CBC, 3DES, RC4, NULL, export, anonymous, CCM_8 ...) is insufficient.
CIPHERS = _table(
    "3.3.2-3.3.5, appendix B",
    good=("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"),
    sufficient=("TLS_AES_128_GCM_SHA256", "TLS_AES_128_CCM_SHA256", *_AEAD_ECDHE_SUFFICIENT),
    phase_out=_phase_out_suites(),
)

#: 3.3.3: elliptic-curve and hybrid post-quantum groups for key exchange.
KEX_GROUPS = _table(
    "3.3.3",
    good=("X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024"),
    sufficient=("secp521r1", "secp384r1", "secp256r1", "x448", "x25519", "brainpoolP512r1",
                "brainpoolP384r1", "brainpoolP256r1"),
    phase_out=("secp224r1",),
    aliases={"prime256v1": "secp256r1", "X25519": "x25519", "X448": "x448"},
)

#: 3.3.3: finite-field groups for DHE. Only the RFC 7919 groups of 3072 bits and more are
#: allowed, and only to phase out; ffdhe2048 and self-generated groups are insufficient.
FFDHE_GROUPS = _table("3.3.3", phase_out=("ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192"))

#: 3.3.2: the certificate's public key. RSA is graded by size (see `rsa_key_level`).
CERT_EC_CURVES = _table(
    "3.3.2",
    sufficient=("secp521r1", "secp384r1", "secp256r1", "brainpoolP512r1", "brainpoolP384r1",
                "brainpoolP256r1", "ed25519", "ed448"),
    phase_out=("secp224r1",),
    aliases={"prime256v1": "secp256r1"},
)
RSA_SUFFICIENT_BITS = 3072
RSA_PHASE_OUT_BITS = 2048

#: 3.3.5: hash functions, for the certificate signature and for the key-exchange signature.
HASHES = _table("3.3.5", good=("sha256", "sha384", "sha512"), phase_out=("sha224",))

#: 3.3.5: signature algorithms of a certificate.
SIGNATURE_ALGORITHMS = _table("3.3.5", sufficient=("rsa", "rsa-pss", "ecdsa", "ed25519",
                                                   "ed448"))

#: 3.4.1: TLS compression (TLS 1.3 has none: good).
TLS_COMPRESSION = _table("3.4.1", good=("off",))

#: 3.4.1: HTTP compression over HTTPS (BREACH): a trade-off the guideline leaves to the
#: operator; internet.nl reports it as optional (info).
HTTP_COMPRESSION = _table("3.4.1", good=("off",), default=Level.PHASE_OUT)

#: 3.4.2: secure renegotiation (RFC 5746); insecure renegotiation is insufficient.
SECURE_RENEGOTIATION = _table("3.4.2", good=("secure", "not applicable"))

#: 3.4.2: client-initiated renegotiation; "limited" is at most `CLIENT_RENEG_LIMIT` attempts.
CLIENT_RENEGOTIATION = _table("3.4.2", good=("refused", "not applicable"),
                              sufficient=("limited",), default=Level.PHASE_OUT)
CLIENT_RENEG_LIMIT = 10

#: 3.4.4: 0-RTT (TLS 1.3 early data) must be off.
ZERO_RTT = _table("3.4.4", good=("off", "not applicable"))

#: 3.4.5: OCSP stapling. Without an OCSP pointer in the certificate there is nothing to
#: staple (good); a pointer without stapling is informational (`OCSP_NOT_STAPLED`).
OCSP_STAPLING = _table("3.4.5", good=("no pointer", "stapled, valid"),
                       sufficient=("not stapled",))

#: 2 and 3: the server enforces an order good > sufficient > phase out; a server that offers
#: only good and sufficient suites needs no order (not applicable, good).
CIPHER_ORDER = _table("2, 3", good=("enforced", "not applicable"))

#: 4.1: Extended Master Secret (RFC 7627) on TLS 1.2.
EXTENDED_MASTER_SECRET = _table("4.1", good=("used", "not applicable"))

#: 4.4: a chain of trust to a trusted root, and the certificate's names covering the host.
CERT_TRUST = _table("4.4", good=("trusted",))
CERT_DOMAIN = _table("4.4", good=("match",))


def rsa_key_level(bits: int) -> Level:
    """3.3.2: RSA keys of 3072 bits and more are sufficient, 2048-3071 phase out."""
    if bits >= RSA_SUFFICIENT_BITS:
        return Level.SUFFICIENT
    if bits >= RSA_PHASE_OUT_BITS:
        return Level.PHASE_OUT
    return Level.INSUFFICIENT


def cert_key_level(key_type: str, bits: int, curve: str | None) -> Level | None:
    """3.3.2: the level of a certificate's public key ("rsa", "ec", "ed25519", "dsa", ...);
    None for an EC key whose curve is not known (evidence recorded before curves were)."""
    if key_type == "rsa":
        return rsa_key_level(bits)
    if key_type in ("ed25519", "ed448"):
        return CERT_EC_CURVES.grade(key_type)
    if key_type == "ec":
        return CERT_EC_CURVES.grade(curve) if curve else None
    return Level.INSUFFICIENT


def worst_cipher_first(name: str) -> int:
    """Sort key that puts the worst-graded suite first: the TLS scan's cipher-order probe
    offers the accepted suites in this order, so a server that follows the client's order
    picks the worst one (watchtower/net/tlsscan.py)."""
    return -CIPHERS.grade(name).rank
