"""TLS facts graded criterion by criterion, by the NCSC-NL tables (`ncsc_tls`), with the
internet.nl status of each (`frameworks`).

Input: the JSON facts of a TLS scan (`watchtower.net.tlsscan_result.TlsScan.evidence()`) and of the
handshake that verified the chain (`watchtower.net.tls.TlsFacts.evidence()`). Output: one
`Criterion` per internet.nl test; checks judge from them and keep them as evidence, the report
lays them out per framework. Pure: nothing here touches the network or the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from watchtower.compliance import ncsc_tls as ncsc
from watchtower.compliance.criteria import Criterion, graded, not_tested, worst_graded
from watchtower.compliance.frameworks import InStatus
from watchtower.compliance.ncsc_tls import Level
from watchtower.net.tls import name_matches

# -- protocol --------------------------------------------------------------------------------


def versions(accepted: Mapping[str, bool | None]) -> Criterion:
    """3.3.1 over every version the server completed a handshake with."""
    offered = [v for v in ncsc.SCANNED_VERSIONS if accepted.get(v)]
    if not offered:
        return not_tested("tls_version", "no TLS version could be negotiated")
    levels = {v: ncsc.VERSIONS.grade(v) for v in offered}
    return worst_graded("tls_version", ncsc.VERSIONS.section, levels, "version",
                        accepted=offered)


def _suites(scan: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for by_version in (scan.get("ciphers") or {}).values() for s in by_version]


def ciphers(scan: Mapping[str, Any]) -> Criterion:
    suites = _suites(scan)
    if not suites:
        return not_tested("tls_ciphers", "no cipher suite list was obtained")
    levels = {s["name"]: ncsc.CIPHERS.grade(s["name"]) for s in suites}
    return worst_graded("tls_ciphers", ncsc.CIPHERS.section, levels, "suite")


def key_exchange(scan: Mapping[str, Any]) -> Criterion:
    """3.3.3 over the groups seen in the handshakes of the accepted suites. Suites without
    ephemeral key exchange are graded (insufficient) by the cipher criterion, not here."""
    levels: dict[str, Level] = {}
    for suite in _suites(scan):
        group = suite.get("group")
        if not group:
            continue
        table = ncsc.FFDHE_GROUPS if suite.get("kex") == "DH" else ncsc.KEX_GROUPS
        levels[group] = table.grade(group)
    if not levels:
        return Criterion("key_exchange", Level.GOOD, InStatus.PASSED,
                         "no finite-field or elliptic-curve parameters to judge", "3.3.3")
    return worst_graded("key_exchange", "3.3.3", levels, "key-exchange group")


def cipher_order(scan: Mapping[str, Any]) -> Criterion:
    """2 and 3: offered worst first, the server must still pick from its best level. A server
    with suites of one level only (say, good and sufficient ones) needs no order."""
    order = scan.get("cipher_order") or {}
    offered = list(order.get("offered") or [])
    if not offered:
        if _tls13_only(scan):
            return graded("cipher_order", ncsc.CIPHER_ORDER, "not applicable",
                          "TLS 1.3 only: the client's order is safe")
        return not_tested("cipher_order", (scan.get("untested") or {}).get(
            "cipher_order", "cipher order not tested"))
    levels = [ncsc.CIPHERS.grade(n) for n in offered]
    best = min(levels, key=lambda lv: lv.rank)
    if all(lv.passes for lv in levels):
        return graded("cipher_order", ncsc.CIPHER_ORDER, "not applicable",
                      "only good and sufficient suites: no order needed", **order)
    chose = order.get("chose")
    if chose is None or ncsc.CIPHERS.grade(chose).rank > best.rank:
        over = next(n for n, lv in zip(offered, levels, strict=True) if lv == best)
        return graded("cipher_order", ncsc.CIPHER_ORDER, "not enforced",
                      f"the server chose {chose} ({ncsc.CIPHERS.grade(str(chose))}) over "
                      f"{over} ({best})", **order)
    return graded("cipher_order", ncsc.CIPHER_ORDER, "enforced",
                  f"the server prefers {chose} whatever the client offers first", **order)


def _tls13_only(scan: Mapping[str, Any]) -> bool:
    accepted = scan.get("versions") or {}
    return bool(accepted.get("TLSv1.3")) and not any(
        accepted.get(v) for v in ncsc.SCANNED_VERSIONS[:-1])


def kex_hash(scan: Mapping[str, Any]) -> Criterion:
    """3.3.5: the weakest hash the server accepts to sign its key exchange (TLS 1.2)."""
    value = scan.get("kex_hash")
    if value is None and _tls13_only(scan):
        return graded("kex_hash", ncsc.HASHES, "sha256", "TLS 1.3 only: SHA-2 signatures")
    if value is None:
        return not_tested("kex_hash", "no TLS 1.2 handshake to test")
    return graded("kex_hash", ncsc.HASHES, value,
                  f"key exchange signed with {value} when the client offers it", weakest=value)


def tls_compression(scan: Mapping[str, Any]) -> Criterion:
    value = scan.get("compression")
    if value is None and _tls13_only(scan):
        value = False  # TLS 1.3 has no compression
    if value is None:
        return not_tested("tls_compression", "TLS compression not tested")
    state = "on" if value else "off"
    return graded("tls_compression", ncsc.TLS_COMPRESSION, state, f"TLS compression {state}")


def secure_renegotiation(scan: Mapping[str, Any]) -> Criterion:
    value = scan.get("secure_renegotiation")
    if value is None and _tls13_only(scan):
        return graded("secure_renegotiation", ncsc.SECURE_RENEGOTIATION, "not applicable",
                      "TLS 1.3 only: no renegotiation")
    if value is None:
        return not_tested("secure_renegotiation", "renegotiation not tested")
    state = "secure" if value else "insecure"
    return graded("secure_renegotiation", ncsc.SECURE_RENEGOTIATION, state,
                  f"{state} renegotiation (RFC 5746)")


def client_renegotiation(scan: Mapping[str, Any]) -> Criterion:
    """3.4.2: refused, limited (at most 10) or unlimited. internet.nl shows a limited one as
    info (allowed-with-low-limit), like an unlimited one once capped at this optional test."""
    count = scan.get("client_renegotiations")
    if count is None and _tls13_only(scan):
        return graded("client_renegotiation", ncsc.CLIENT_RENEGOTIATION, "not applicable",
                      "TLS 1.3 only: no renegotiation")
    if count is None:
        return not_tested("client_renegotiation", "client-initiated renegotiation not tested")
    if count == 0:
        state = "refused"
    elif count <= ncsc.CLIENT_RENEG_LIMIT:
        state = "limited"
    else:
        state = "unlimited"
    crit = graded("client_renegotiation", ncsc.CLIENT_RENEGOTIATION, state,
                  f"client-initiated renegotiation {state} ({count} accepted)", accepted=count)
    if state != "refused":
        crit.status = InStatus.FAILED if state == "unlimited" else InStatus.INFO
    return crit


def zero_rtt(scan: Mapping[str, Any], *, applies: bool = True) -> Criterion:
    """3.4.4. Mail: internet.nl does not test 0-RTT over SMTP (it would send HTTP)."""
    value = scan.get("early_data")
    state = "not applicable" if not applies or value is None else ("on" if value else "off")
    return graded("zero_rtt", ncsc.ZERO_RTT, state, f"0-RTT {state}")


def extended_master_secret(scan: Mapping[str, Any]) -> Criterion:
    value = scan.get("extended_master_secret")
    if value is None and not (scan.get("versions") or {}).get("TLSv1.2"):
        value = "not applicable"
    if value is None:
        return not_tested("extended_master_secret", "Extended Master Secret not tested")
    state = value if isinstance(value, str) else ("used" if value else "not used")
    return graded("extended_master_secret", ncsc.EXTENDED_MASTER_SECRET, state,
                  f"Extended Master Secret {state} on TLS 1.2")


def ocsp_stapling(scan: Mapping[str, Any], leaf: Mapping[str, Any] | None) -> Criterion:
    """3.4.5: only a certificate that names an OCSP responder has anything to staple."""
    if leaf is None:
        return not_tested("ocsp_stapling", "no certificate seen")
    if not leaf.get("ocsp"):
        return graded("ocsp_stapling", ncsc.OCSP_STAPLING, "no pointer",
                      "the certificate names no OCSP responder")
    ocsp = scan.get("ocsp") or {}
    if not ocsp.get("stapled"):
        crit = graded("ocsp_stapling", ncsc.OCSP_STAPLING, "not stapled",
                      "the certificate names an OCSP responder but no response is stapled")
        crit.status = InStatus.INFO
        return crit
    state = "stapled, valid" if ocsp.get("valid") else "stapled, invalid"
    return graded("ocsp_stapling", ncsc.OCSP_STAPLING, state, f"OCSP response {state}",
                  **ocsp)


# -- certificates ------------------------------------------------------------------------------


def _non_root(chain: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """internet.nl grades every certificate served except a root (self-issued) one."""
    return [c for c in chain if c.get("subject") != c.get("issuer")]


def _who(cert: Mapping[str, Any]) -> str:
    return str(cert.get("subject") or "?")[:80]


def cert_trust(tls: Mapping[str, Any]) -> Criterion:
    if tls.get("verified") is None:
        return not_tested("cert_trust", f"the verifying handshake failed: "
                                        f"{tls.get('verify_error')}")
    if tls.get("verified"):
        return graded("cert_trust", ncsc.CERT_TRUST, "trusted", "chain of trust complete")
    why = tls.get("verify_error") or "not verified"
    return graded("cert_trust", ncsc.CERT_TRUST, "untrusted", f"chain not trusted: {why}")


def cert_pubkey(chain: list[Mapping[str, Any]]) -> Criterion:
    certs = _non_root(chain)
    if not certs:
        return not_tested("cert_pubkey", "no certificate seen")
    levels = {}
    for cert in certs:
        key_type, _, bits = str(cert.get("key", "")).partition("-")
        level = ncsc.cert_key_level(key_type, int(bits) if bits.isdigit() else 0,
                                    cert.get("curve"))
        if level is None:
            continue
        levels[f"{_who(cert)}: {cert.get('key')}{'/' + cert['curve'] if cert.get('curve') else ''}"
               ] = level
    if not levels:
        return not_tested("cert_pubkey", "no key of known type and curve")
    return worst_graded("cert_pubkey", "3.3.2", levels, "public key")


def cert_signature(chain: list[Mapping[str, Any]]) -> Criterion:
    certs = _non_root(chain)
    if not certs:
        return not_tested("cert_signature", "no certificate seen")
    levels = {}
    for cert in certs:
        algorithm = ncsc.SIGNATURE_ALGORITHMS.grade(str(cert.get("signature") or ""))
        digest = (ncsc.HASHES.grade(str(cert["signature_hash"])) if cert.get("signature_hash")
                  else Level.GOOD)  # Ed25519/Ed448 sign without a separate hash
        levels[f"{_who(cert)}: {cert.get('signature')}-{cert.get('signature_hash')}"] = (
            Level.worst([algorithm, digest]))
    return worst_graded("cert_signature", "3.3.5", levels, "signature")


def cert_domain(chain: list[Mapping[str, Any]], host: str) -> Criterion:
    if not chain:
        return not_tested("cert_domain", "no certificate seen")
    names = list(chain[0].get("names") or [])
    if any(name_matches(n, host) for n in names):
        return graded("cert_domain", ncsc.CERT_DOMAIN, "match", f"certificate covers {host}")
    return graded("cert_domain", ncsc.CERT_DOMAIN, "mismatch",
                  f"certificate names {', '.join(names[:4])} do not cover {host}", names=names)


def endpoint_criteria(scan: Mapping[str, Any], trust: Mapping[str, Any] | None, host: str,
                      *, web: bool) -> list[Criterion]:
    """Every criterion of one TLS endpoint (an HTTPS server, or one MX after STARTTLS). The
    certificates graded are those the scan received; trust is the verifying handshake's."""
    chain = list(scan.get("chain") or (trust or {}).get("chain") or [])
    out = [versions(scan.get("versions") or {}), ciphers(scan), cipher_order(scan),
           key_exchange(scan), kex_hash(scan), tls_compression(scan),
           secure_renegotiation(scan), client_renegotiation(scan),
           extended_master_secret(scan), zero_rtt(scan, applies=web)]
    if web:
        out.append(ocsp_stapling(scan, chain[0] if chain else None))
    out.append(cert_trust(trust) if trust is not None else
               not_tested("cert_trust", "no handshake to verify"))
    out += [cert_pubkey(chain), cert_signature(chain), cert_domain(chain, host)]
    return out


def https_exists(scan: Mapping[str, Any]) -> Criterion:
    """internet.nl's "HTTPS available": some TLS version completes a handshake."""
    if any((scan.get("versions") or {}).values()):
        return Criterion("https_exists", None, InStatus.PASSED, "HTTPS available")
    return Criterion("https_exists", None, InStatus.FAILED, "no TLS handshake completed")


def starttls_exists(server: Mapping[str, Any]) -> Criterion:
    """internet.nl's "STARTTLS available" for one MX: offered and the handshake completes."""
    if server.get("tls"):
        return Criterion("starttls_exists", None, InStatus.PASSED, "STARTTLS available")
    if any(((server.get("scan") or {}).get("versions") or {}).values()):
        return Criterion("starttls_exists", None, InStatus.PASSED,
                         f"STARTTLS available (a strict client fails: {server.get('error')})")
    kind = server.get("error_kind")
    if kind in ("no-starttls", "starttls", "tls"):
        return Criterion("starttls_exists", None, InStatus.FAILED,
                         f"STARTTLS not usable: {server.get('error')}")
    return Criterion("starttls_exists", None, InStatus.ERROR,
                     f"could not test: {server.get('error')}")


