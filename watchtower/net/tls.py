"""TLS handshakes that report what was offered: version, cipher, the certificate chain.

One handshake verifies against the configured CA bundle with the host name; when verification
fails, a second one without verification collects the certificate so the evidence shows what was
served and why it was refused. A `starttls` callback upgrades plain protocols (SMTP, IMAP) first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import ssl
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.net.clienttls import verifying_context
from watchtower.net.deadline import remaining
from watchtower.net.dns import DnsError, Resolver

StartTls = Callable[[socket.socket, float], None]

TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


@dataclass(slots=True)
class CertFacts:
    """The facts of one certificate that checks judge and reports show."""

    subject: str
    issuer: str
    names: list[str]
    not_before: dt.datetime
    not_after: dt.datetime
    serial: str
    sha256: str
    spki_sha256: str
    key_type: str
    key_bits: int
    signature_hash: str | None
    der: bytes = field(repr=False)
    #: The named curve of an EC key (None otherwise), graded by NCSC-NL 3.3.2.
    curve: str | None = None
    #: The signature algorithm family ("rsa", "rsa-pss", "ecdsa", "ed25519", "dsa", ...).
    signature: str = ""
    #: OCSP responder URLs from Authority Information Access (what could be stapled).
    ocsp: list[str] = field(default_factory=list)

    @classmethod
    def from_der(cls, der: bytes) -> CertFacts:
        cert = x509.load_der_x509_certificate(der)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
        except x509.ExtensionNotFound:
            names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        key = cert.public_key()
        key_type, bits = _key_facts(key)
        spki = key.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo)
        sig_hash = cert.signature_hash_algorithm
        return cls(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            names=names,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            serial=format(cert.serial_number, "x"),
            sha256=cert.fingerprint(hashes.SHA256()).hex(),
            spki_sha256=hashlib.sha256(spki).hexdigest(),
            key_type=key_type,
            key_bits=bits,
            signature_hash=sig_hash.name if sig_hash else None,
            der=der,
            curve=key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else None,
            signature=_signature_family(cert),
            ocsp=_ocsp_urls(cert),
        )

    def evidence(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "names": self.names,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "serial": self.serial,
            "sha256": self.sha256,
            "key": f"{self.key_type}-{self.key_bits}",
            "curve": self.curve,
            "signature": self.signature,
            "signature_hash": self.signature_hash,
            "ocsp": self.ocsp,
        }

    def matches_name(self, host: str) -> bool:
        return any(name_matches(pattern, host) for pattern in self.names)


@dataclass(slots=True)
class TlsFacts:
    """What one TLS endpoint offered."""

    host: str
    port: int
    address: str
    version: str | None
    cipher: str | None
    chain: list[CertFacts]
    verified: bool
    verify_error: str | None

    @property
    def leaf(self) -> CertFacts | None:
        return self.chain[0] if self.chain else None

    def evidence(self) -> dict[str, Any]:
        return {
            "endpoint": f"{self.host}:{self.port}",
            "address": self.address,
            "version": self.version,
            "cipher": self.cipher,
            "verified": self.verified,
            "verify_error": self.verify_error,
            "chain": [c.evidence() for c in self.chain],
        }


def _signature_family(cert: x509.Certificate) -> str:
    """The family of the algorithm the issuer signed with, from its OID's name."""
    name = cert.signature_algorithm_oid._name.lower()  # e.g. sha256WithRSAEncryption
    for marker, family in (("rsassapss", "rsa-pss"), ("rsa", "rsa"), ("ecdsa", "ecdsa"),
                           ("ed25519", "ed25519"), ("ed448", "ed448"), ("dsa", "dsa")):
        if marker in name.replace("-", "").replace("_", ""):
            return family
    return name


def _ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [str(d.access_location.value) for d in aia
            if d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP]


def _key_facts(key: Any) -> tuple[str, int]:
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ec", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "dsa", key.key_size
    return type(key).__name__, 0


def name_matches(pattern: str, host: str) -> bool:
    """RFC 6125 matching: exact, or one left-most `*` label covering exactly one label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and "." not in host[: -len(suffix)] and host != suffix[1:]
    return False


def first_address(resolver: Resolver, host: str, deadline: float | None) -> str:
    """The address a TLS probe dials: the resolver's first for `host`, or a ProbeError."""
    try:
        addrs = resolver.addresses(host, deadline=deadline)
    except DnsError as exc:
        raise ProbeError(f"cannot resolve {host}: {exc.reason}", kind="dns") from exc
    if not addrs:
        raise ProbeError(f"{host} has no address", kind="dns")
    return addrs[0]


class TlsProber:
    """Opens TLS connections to fleet endpoints through the fleet's resolver."""

    def __init__(self, resolver: Resolver, ca_bundle: str | None = None, timeout: float = 10.0
                 ) -> None:
        self.resolver = resolver
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self._contexts: dict[tuple[bool, str | None], ssl.SSLContext] = {}
        self._contexts_lock = threading.Lock()

    def _context(self, verify: bool, version: str | None) -> ssl.SSLContext:
        """One context per (verify, version), built once per prober: loading the CA bundle
        into a fresh context per handshake cost more CPU than the handshake itself."""
        key = (verify, version)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._new_context(verify, version)
            with self._contexts_lock:
                ctx = self._contexts.setdefault(key, ctx)
        return ctx

    def _new_context(self, verify: bool, version: str | None) -> ssl.SSLContext:
        if verify and version is None:
            return verifying_context(self.ca_bundle)  # shared, never configured further
        if verify:
            ctx = ssl.create_default_context(cafile=self.ca_bundle)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if version is not None:
            v = TLS_VERSIONS[version]
            if v < ssl.TLSVersion.TLSv1_2:
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let us *ask* for legacy versions
            with warnings.catch_warnings():  # asking for TLS 1.0 is the point of the probe
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = v
                ctx.maximum_version = v
        return ctx

    def probe(
        self,
        host: str,
        port: int,
        *,
        starttls: StartTls | None = None,
        deadline: float | None = None,
        address: str | None = None,
    ) -> TlsFacts:
        """Handshake with verification; on failure, again without, to see the certificate."""
        addr = address or self.address(host, deadline)
        try:
            return self._handshake(host, port, addr, True, None, starttls, deadline)
        except ssl.SSLCertVerificationError as exc:
            facts = self._handshake(host, port, addr, False, None, starttls, deadline)
            facts.verified = False
            facts.verify_error = exc.verify_message or str(exc)
            return facts

    def accepts_version(
        self, host: str, port: int, version: str, *, starttls: StartTls | None = None,
        deadline: float | None = None, address: str | None = None,
    ) -> bool:
        """Whether the server completes a handshake limited to exactly `version`."""
        addr = address or self.address(host, deadline)
        try:
            self._handshake(host, port, addr, False, version, starttls, deadline)
        except ssl.SSLError:
            return False
        except ProbeError as exc:
            if exc.kind == "tls":
                return False
            raise
        return True

    def address(self, host: str, deadline: float | None) -> str:
        """The address a probe of `host` dials (its first; `ProbeError` when none)."""
        return first_address(self.resolver, host, deadline)

    def _handshake(
        self, host: str, port: int, addr: str, verify: bool, version: str | None,
        starttls: StartTls | None, deadline: float | None,
    ) -> TlsFacts:
        ctx = self._context(verify, version)
        t = remaining(deadline, self.timeout)
        try:
            raw = socket.create_connection((addr, port), timeout=t)
        except TimeoutError as exc:
            raise ProbeTimeout(f"{host}:{port}: connect timed out") from exc
        except OSError as exc:
            raise ProbeError(f"{host}:{port}: cannot connect ({exc})", kind="unreachable") from exc
        try:
            if starttls is not None:
                starttls(raw, remaining(deadline, self.timeout))
            raw.settimeout(remaining(deadline, self.timeout))
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                chain = _chain(tls)
                cipher = tls.cipher()
                return TlsFacts(host, port, addr, tls.version(), cipher[0] if cipher else None,
                                chain, verify, None)
        except ssl.SSLCertVerificationError:
            raise
        except TimeoutError as exc:
            raise ProbeTimeout(f"{host}:{port}: TLS handshake timed out") from exc
        except ssl.SSLError as exc:
            if version is not None:
                raise
            raise ProbeError(f"{host}:{port}: TLS handshake failed ({exc.reason or exc})",
                             kind="tls") from exc
        except ProbeError:
            raise
        except OSError as exc:
            raise ProbeError(f"{host}:{port}: connection failed ({exc})", kind="tls") from exc
        finally:
            raw.close()


def _chain(tls: ssl.SSLSocket) -> list[CertFacts]:
    """The chain as the server sent it (leaf first); falls back to the leaf alone."""
    sslobj: Any = getattr(tls, "_sslobj", None)
    ders: list[bytes] = []
    getter = getattr(sslobj, "get_unverified_chain", None)
    if getter is not None:
        try:
            ders = [c.public_bytes(ssl._ssl.ENCODING_DER) for c in getter() or []]  # type: ignore[attr-defined]
        except (AttributeError, ValueError, ssl.SSLError):
            ders = []
    if not ders:
        leaf = tls.getpeercert(binary_form=True)
        ders = [leaf] if leaf else []
    return [CertFacts.from_der(d) for d in ders]
