"""A test PKI for the TLS-criteria servers: root -> intermediate -> leaf, with the key types
the NCSC-NL tables grade (RSA 1024/2048/3072, EC P-256/P-224, Ed25519), an OCSP pointer on
request, and OCSP responses to staple. Built with cryptography: trustme issues only one key
type and no AIA, which the OCSP and chain cases need."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
OCSP_URL = "http://ocsp.pki.test/"


def new_key(spec: str) -> PrivateKey:
    """"rsa-2048", "ec-secp256r1", "ed25519" ..."""
    kind, _, param = spec.partition("-")
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=int(param))
    if kind == "ec":
        return ec.generate_private_key(getattr(ec, param.upper())())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key spec {spec!r}")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


@dataclass
class Issued:
    """A certificate with its key and the files a server reads."""

    cert: x509.Certificate
    key: PrivateKey
    cert_path: Path
    key_path: Path
    chain_path: Path  # leaf + intermediate (what a correct server sends)


class TestPKI:
    """Root and intermediate CA in `directory`; `ca_path` is the bundle clients trust."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.root_key = new_key("ec-secp384r1")
        self.root = self._cert(_name("watchtower test root"), self.root_key.public_key(),
                               _name("watchtower test root"), self.root_key, ca=True)
        self.inter_key = new_key("ec-secp384r1")
        self.inter = self._cert(_name("watchtower test intermediate"),
                                self.inter_key.public_key(), self.root.subject, self.root_key,
                                ca=True)
        self.ca_path = self.dir / "root.pem"
        self.ca_path.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))

    def _cert(self, subject: x509.Name, public_key: object, issuer: x509.Name,
              signer: PrivateKey, *, ca: bool, names: list[str] = (),  # type: ignore[assignment]
              ocsp_pointer: bool = False, hash_alg: hashes.HashAlgorithm | None = None
              ) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(public_key)  # type: ignore[arg-type]
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=90))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        if ocsp_pointer:
            builder = builder.add_extension(x509.AuthorityInformationAccess([
                x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                       x509.UniformResourceIdentifier(OCSP_URL))]),
                critical=False)
        return builder.sign(signer, hash_alg or _hash_for(signer))  # type: ignore[arg-type]

    def issue(self, name: str, host: str, *, key: str = "ec-secp256r1",
              ocsp_pointer: bool = False, names: list[str] | None = None) -> Issued:
        """A leaf for `host` signed by the intermediate, written as name.{crt,key,chain}."""
        leaf_key = new_key(key)
        cert = self._cert(_name(host), leaf_key.public_key(), self.inter.subject,
                          self.inter_key, ca=False, names=names or [host],
                          ocsp_pointer=ocsp_pointer)
        pem = serialization.Encoding.PEM
        cert_path, key_path = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        chain_path = self.dir / f"{name}.chain.pem"
        cert_path.write_bytes(cert.public_bytes(pem))
        chain_path.write_bytes(cert.public_bytes(pem) + self.inter.public_bytes(pem))
        key_path.write_bytes(leaf_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        key_path.chmod(0o644)  # nginx workers run as nobody; the test key protects nothing
        return Issued(cert, leaf_key, cert_path, key_path, chain_path)

    def ocsp_response(self, issued: Issued, name: str) -> Path:
        """A "good" OCSP response for `issued`, signed by its issuer (nginx ssl_stapling_file)."""
        now = dt.datetime.now(dt.UTC)
        builder = (ocsp.OCSPResponseBuilder()
                   .add_response(cert=issued.cert, issuer=self.inter, algorithm=hashes.SHA1(),
                                 cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now,
                                 next_update=now + dt.timedelta(days=7), revocation_time=None,
                                 revocation_reason=None)
                   .responder_id(ocsp.OCSPResponderEncoding.HASH, self.inter)
                   .certificates([self.inter]))
        response = builder.sign(self.inter_key, hashes.SHA256())
        path = self.dir / f"{name}.ocsp.der"
        path.write_bytes(response.public_bytes(serialization.Encoding.DER))
        return path
