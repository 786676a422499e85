"""The TLS configuration cases the NCSC-NL criteria are tested against, as nginx sites.

Each case is what an operator would configure, named after what the guideline says of it.
What Debian's OpenSSL 3.0 cannot produce (TLS compression: built without zlib and disabled by
nginx; insecure renegotiation: removed from OpenSSL; unlimited client-initiated renegotiation:
nginx refuses all of it; SSL 2.0/3.0: not compiled in) is covered by recorded scan facts in
tests/fixtures/checks/web.tls.ncsc.json instead.
"""

from __future__ import annotations

from pathlib import Path

from tests.servers.base import run, tool
from tests.servers.nginx import Site
from tests.servers.pki import TestPKI

ZONE = "tls.test"
#: Signature algorithms of a server that signs its key exchange with SHA-2 of 256 bits and
#: more only (OpenSSL 3.0's default list still offers SHA-224 and SHA-1 at level 0).
SHA2_SIGALGS = ("ssl_conf_command SignatureAlgorithms "
                "ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:rsa_pss_rsae_sha256:"
                "rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:RSA+SHA256:RSA+SHA384:RSA+SHA512;")
GOOD_HEADERS = {
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; frame-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'self'; form-action 'self'",
    "Strict-Transport-Security": "max-age=31536000",
}
EC_TLS12 = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
RSA_TLS12 = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"


def host(case: str) -> str:
    return f"{case}.{ZONE}"


def dh_params(directory: Path) -> dict[str, Path]:
    """ffdhe3072 (RFC 7919, phase out) and a self-generated 1024-bit group (insufficient)."""
    out = {"ffdhe3072": directory / "ffdhe3072.pem", "custom1024": directory / "dh1024.pem"}
    options = {"ffdhe3072": "group:ffdhe3072", "custom1024": "dh_paramgen_prime_len:1024"}
    for name, path in out.items():
        if not path.exists():
            run([tool("openssl"), "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
                 options[name], "-out", path])
    return out


def sites(pki: TestPKI, directory: Path) -> list[Site]:
    """Every case, certificates issued by `pki`."""
    dh = dh_params(directory)

    def cert(case: str, key: str, *, ocsp_pointer: bool = False) -> tuple[Path, Path]:
        issued = pki.issue(case, host(case), key=key, ocsp_pointer=ocsp_pointer)
        return issued.chain_path, issued.key_path

    good = pki.issue("good", host("good"), key="ec-secp256r1", ocsp_pointer=True)
    bare = pki.issue("no-intermediate", host("no-intermediate"))
    return [
        Site("good", host("good"), good.chain_path, good.key_path, ciphers=EC_TLS12,
             stapling_file=pki.ocsp_response(good, "good"), headers=GOOD_HEADERS,
             extra=SHA2_SIGALGS, ipv6=True),
        Site("sufficient", host("sufficient"), *cert("sufficient", "rsa-3072"),
             protocols="TLSv1.2", ciphers="ECDHE-RSA-AES128-GCM-SHA256", extra=SHA2_SIGALGS),
        Site("phase-out", host("phase-out"), *cert("phase-out", "rsa-2048"),
             protocols="TLSv1.2",
             ciphers="ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-SHA384:"
                     "DHE-RSA-AES256-GCM-SHA384", dhparam=dh["ffdhe3072"], extra=SHA2_SIGALGS),
        Site("legacy", host("legacy"), *cert("legacy", "rsa-2048"),
             protocols="TLSv1 TLSv1.1 TLSv1.2",
             ciphers="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA:AES128-SHA:@SECLEVEL=0",
             prefer_server_ciphers=False),
        Site("no-stapling", host("no-stapling"), *cert("no-stapling", "ec-secp256r1",
                                                       ocsp_pointer=True), ciphers=EC_TLS12, extra=SHA2_SIGALGS),
        Site("zero-rtt", host("zero-rtt"), *cert("zero-rtt", "ec-secp256r1"),
             protocols="TLSv1.3", early_data=True, extra=SHA2_SIGALGS),
        Site("weak-dh", host("weak-dh"), *cert("weak-dh", "rsa-3072"), protocols="TLSv1.2",
             ciphers="DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0", dhparam=dh["custom1024"]),
        Site("rsa-1024", host("rsa-1024"), *cert("rsa-1024", "rsa-1024"),
             ciphers=RSA_TLS12 + ":@SECLEVEL=0"),
        Site("no-intermediate", host("no-intermediate"), bare.cert_path, bare.key_path,
             ciphers=EC_TLS12, extra=SHA2_SIGALGS),
        Site("http-compression", host("http-compression"),
             *cert("http-compression", "ec-secp256r1"), ciphers=EC_TLS12, gzip=True, extra=SHA2_SIGALGS),
    ]


def mx_host(case: str) -> str:
    return f"mx-{case}.{ZONE}"


def mail_domain(case: str) -> str:
    return f"{case}.mail.{ZONE}"


def mx_cases(pki: TestPKI, directory: Path) -> dict[str, dict[str, str]]:
    """Postfix MX listeners: main.cf parameters each case's smtpd overrides. Postfix 3.7 sets
    no signature algorithms, so every case signs its key exchange with what OpenSSL offers."""
    dh = dh_params(directory)

    def chain(case: str, key: str) -> str:
        issued = pki.issue(f"mx-{case}", mx_host(case), key=key)
        return f"{issued.key_path}, {issued.chain_path}"

    only12 = "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1, !TLSv1.3"
    return {
        "good": {"smtpd_tls_chain_files": chain("good", "ec-secp256r1"),
                 "smtpd_tls_protocols": ">=TLSv1.2", "smtpd_tls_ciphers": "high",
                 "tls_high_cipherlist": "ECDHE+AESGCM:ECDHE+CHACHA20"},
        "legacy": {"smtpd_tls_chain_files": chain("legacy", "rsa-2048"),
                   "smtpd_tls_protocols": ">=TLSv1",
                   "tls_medium_cipherlist": "DEFAULT:@SECLEVEL=0"},
        "weak-dh": {"smtpd_tls_chain_files": chain("weak-dh", "rsa-3072"),
                    "smtpd_tls_protocols": only12,
                    "tls_medium_cipherlist": "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
                    "smtpd_tls_dh1024_param_file": str(dh["custom1024"])},
        "rsa-1024": {"smtpd_tls_chain_files": chain("rsa-1024", "rsa-1024"),
                     "tls_medium_cipherlist": "DEFAULT:@SECLEVEL=0"},
        "no-starttls": {"smtpd_tls_security_level": "none"},
    }
