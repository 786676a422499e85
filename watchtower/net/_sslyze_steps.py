"""The steps of a full TLS scan: raw ClientHellos (`tlshello`) where the server's first
flight answers, sslyze's plugins and scan jobs where a whole handshake is needed (see
`tlsscan`).

Kept apart from `tlsscan` so importing watchtower does not import sslyze and nassl (two OpenSSL
builds, ~40 ms and 20 MB) until a scan runs; the sweep workers' forkserver loads them once for
all its workers (watchtower/probe/warm.py). Every step opens its connections through
`Session.hello()`, `connection()`, `run_job()` or `run_plugin()`, which give each connection
what is left of the deadline and count it; a step that cannot finish records why in
`scan.untested` and the scan goes on with the next step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import certifi
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from nassl._nassl import OpenSSLError
from nassl.ephemeral_key_info import DhEphemeralKeyInfo, EcDhEphemeralKeyInfo, EphemeralKeyInfo
from nassl.ephemeral_key_info import OpenSslEvpPkeyEnum as Pkey
from nassl.ocsp_response import OcspResponseNotTrustedError, verify_ocsp_response
from nassl.ssl_client import ClientCertificateRequested, OpenSslDigestNidEnum
from sslyze import (
    ClientAuthRequirementEnum,
    ProtocolWithOpportunisticTlsEnum,
    ScanCommand,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    TlsVersionEnum,
)
from sslyze.errors import ConnectionToServerFailed, TlsHandshakeFailed
from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import CipherSuiteAcceptedByServer
from sslyze.plugins.plugin_base import ScanJobResult
from sslyze.plugins.scan_commands import ScanCommandsRepository
from sslyze.plugins.session_renegotiation_plugin import (
    SessionRenegotiationExtraArgument,
    _test_client_renegotiation,
)
from sslyze.server_connectivity import ServerConnectivityInfo, ServerTlsProbingResult

from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.net import tlshello
from watchtower.net._sslyze_ciphers import Unsettled, accepted_suites
from watchtower.net.smtp_dialogue import StartTlsDialogue, default_helo
from watchtower.net.tls import CertFacts
from watchtower.net.tlsgroups import ffdhe_group
from watchtower.net.tlsscan_result import (
    RENEGOTIATION_ATTEMPTS,
    VERSION_NAMES,
    TlsScan,
    with_timeout,
)

_VERSIONS = dict(zip(VERSION_NAMES, TlsVersionEnum, strict=True))
_CIPHER_COMMANDS = {
    "SSLv2": ScanCommand.SSL_2_0_CIPHER_SUITES, "SSLv3": ScanCommand.SSL_3_0_CIPHER_SUITES,
    "TLSv1": ScanCommand.TLS_1_0_CIPHER_SUITES, "TLSv1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
    "TLSv1.2": ScanCommand.TLS_1_2_CIPHER_SUITES, "TLSv1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
}
#: The versions whose hellos offer renegotiation_info, so the ServerHello answers it (SSL 3.0
#: hellos carry no extensions; TLS 1.3 has no renegotiation).
_RENEGOTIATION_INFO_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2")
#: Connection failures that mean "the server said no", as opposed to "no server there".
_REFUSALS = (TlsHandshakeFailed, OpenSSLError, ClientCertificateRequested)


class Session:
    """One scan's connection factory: location, configuration, deadline, connection count."""

    def __init__(self, scan: TlsScan, budget: Callable[[], float], *, helo: str | None,
                 ca_bundle: str | None, cipher_rank: Callable[[str], int]) -> None:
        self.scan = scan
        self.helo = helo or (default_helo() if scan.starttls == "smtp" else None)
        self.cipher_rank = cipher_rank
        self.budget = budget
        self.ca_bundle = ca_bundle
        self.location = ServerNetworkLocation(hostname=scan.host, port=scan.port,
                                              ip_address=scan.address)
        self.config = ServerNetworkConfiguration(
            tls_server_name_indication=scan.host,
            tls_opportunistic_encryption=(ProtocolWithOpportunisticTlsEnum.SMTP
                                          if scan.starttls == "smtp" else None),
            smtp_ehlo_hostname=helo if scan.starttls == "smtp" else None,
            network_timeout=int(budget()), network_max_retries=0)
        accepted = [_VERSIONS[v] for v, ok in scan.versions.items() if ok]
        self.highest = max(accepted, key=lambda v: v.value, default=TlsVersionEnum.TLS_1_3)

    def preamble(self) -> Callable[[Any, float], None] | None:
        """What precedes a raw hello on this server: the SMTP opening up to STARTTLS."""
        if self.scan.starttls != "smtp":
            return None
        return StartTlsDialogue(self.helo or default_helo(), None)

    def hello(self, version: str, **kwargs: Any) -> tlshello.VersionAnswer:
        """One counted raw hello (`tlshello.ask`) under the deadline, after the preamble; an
        SMTP opening that times out is a timed-out answer. `Unreachable` and the opening's
        other errors pass."""
        timeout = self.budget()  # ProbeTimeout once the deadline is spent
        self.scan.connections += 1
        try:
            return tlshello.ask(self.scan.address, self.scan.port, self.scan.host, version,
                                timeout=timeout, preamble=self.preamble(), **kwargs)
        except ProbeTimeout:
            return tlshello.VersionAnswer(tlshello.Answer.TIMED_OUT, "SMTP opening timed out")

    def info(self) -> ServerConnectivityInfo:
        """sslyze's view of the server, with the next connection's timeout."""
        probing = ServerTlsProbingResult(
            highest_tls_version_supported=self.highest, cipher_suite_supported="",
            client_auth_requirement=ClientAuthRequirementEnum.DISABLED,
            supports_ecdh_key_exchange=True)
        return ServerConnectivityInfo(self.location, with_timeout(self.config, self.budget()),
                                      probing)

    def handshake(self, version: str, *, legacy: bool | None = None,
                  prepare: Callable[[Any], None] | None = None) -> Any:
        """Connect with `version` (after `prepare(ssl_client)`) and return the connection,
        closed but still able to tell what was negotiated. sslyze's errors pass through.
        (Not a context manager: sslyze's exceptions are frozen dataclasses, which contextlib
        cannot re-raise.)"""
        conn = self.connection(version, legacy=legacy)
        try:
            if prepare is not None:
                prepare(conn.ssl_client)
            conn.connect(should_retry_connection=False)
        finally:
            conn.close()
        return conn

    def connection(self, version: str, *, legacy: bool | None = None) -> Any:
        """A counted, not yet connected sslyze connection pinned to `version`, on the legacy
        OpenSSL build below TLS 1.2 unless `legacy` says otherwise."""
        self.scan.connections += 1
        return self.info().get_preconfigured_tls_connection(
            override_tls_version=_VERSIONS[version],
            should_use_legacy_openssl=legacy if legacy is not None else
            _VERSIONS[version].value < TlsVersionEnum.TLS_1_2.value)

    def run_job(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run one of a plugin's scan jobs (`function(server_info, *args)`) under the deadline,
        counted; its errors pass."""
        self.budget()  # raises ProbeTimeout when the deadline is spent
        self.scan.connections += 1
        return function(self.info(), *args)

    def run_plugin(self, command: ScanCommand, extra: Any = None) -> Any:
        """Run one sslyze plugin's scan jobs here, one after the other, under the deadline."""
        impl = ScanCommandsRepository.get_implementation_cls(command)
        results = []
        for job in impl.scan_jobs_for_scan_command(self.info(), extra):
            self.budget()  # raises ProbeTimeout when the deadline is spent
            self.scan.connections += 1
            try:
                results.append(ScanJobResult(job.function_to_call(*job.function_arguments),
                                             None))
            except Exception as exc:  # sslyze reports a job's failure through its result
                results.append(ScanJobResult(None, exc))
        return impl.result_for_completed_scan_jobs(self.info(), results)


def detect_versions(session: Session) -> None:
    """One hello per protocol version, answered from the server's first flight (`tlshello`:
    no TLS library, a tenth of a handshake's CPU); the chain (DER, parsed by the full scan)
    from the lowest accepted version that sends it in the clear. The first failed
    connection is a ProbeError, and so is a server that let every hello time out (it said
    nothing at all: a hung or filtered server, not a TLS configuration to grade)."""
    scan = session.scan
    timeouts = 0
    for name in VERSION_NAMES:
        try:
            answer = session.hello(name, want_chain=not scan.chain_der)
        except ProbeTimeout:
            raise  # the probe's deadline is spent
        except (tlshello.Unreachable, ProbeError) as exc:
            if not any(scan.versions.values()) and name == VERSION_NAMES[0]:
                reason = exc.reason if isinstance(exc, ProbeError) else str(exc)
                raise ProbeError(f"{scan.host}:{scan.port} ({scan.address}): {reason}",
                                 kind="unreachable") from exc
            scan.versions[name] = False
            continue
        scan.versions[name] = answer.accepted
        timeouts += answer.answer is tlshello.Answer.TIMED_OUT
        if answer.accepted and name in _RENEGOTIATION_INFO_VERSIONS:
            scan.renegotiation_info[name] = tlshello.RENEGOTIATION_INFO in answer.extensions
        if answer.certificates and not scan.chain_der:
            scan.chain_der = answer.certificates
    if timeouts == len(VERSION_NAMES):
        raise ProbeTimeout(f"{scan.host}:{scan.port} ({scan.address}): no TLS handshake "
                           "answered within the timeout")
    accepted = [_VERSIONS[v] for v, ok in scan.versions.items() if ok]
    session.highest = max(accepted, key=lambda v: v.value, default=session.highest)


def full_scan(session: Session, *, web: bool) -> None:
    """Every step after version detection; each one may be cut by the deadline."""
    scan = session.scan
    below13 = [v for v in VERSION_NAMES[:-1] if scan.versions.get(v)]
    steps: list[tuple[str, Callable[[Session], None]]] = [("chain", _chain_step),
                                                          ("ciphers", _ciphers)]
    if below13:
        steps += [("cipher_order", _cipher_order), ("kex_hash", _kex_hash),
                  ("compression", _compression), ("renegotiation", _renegotiation),
                  ("extended_master_secret", _ems)]
    if web and scan.versions.get("TLSv1.3"):
        steps.append(("early_data", _early_data))
    if web:
        steps.append(("ocsp", _ocsp))
    for name, step in steps:
        try:
            step(session)
        except ProbeTimeout:
            scan.untested[name] = "probe deadline reached"
        except (ConnectionToServerFailed, OpenSSLError, OSError, RuntimeError) as exc:
            scan.untested[name] = f"{type(exc).__name__}: {exc}"[:200]


def _chain_step(session: Session) -> None:
    """The chain the version probe saw in the clear (TLS 1.2 and below), parsed only now: a
    light version check never reads it. A TLS 1.3-only server sends it encrypted, so one
    handshake asks OpenSSL for it."""
    scan = session.scan
    if scan.chain_der:
        scan.chain = [CertFacts.from_der(der).evidence() for der in scan.chain_der]
    elif scan.versions.get("TLSv1.3"):
        conn = session.handshake("TLSv1.3")
        scan.chain = _chain(conn.ssl_client.get_received_chain())


def _chain(pems: list[str]) -> list[dict[str, Any]]:
    """The chain as the server sent it, in the evidence form of watchtower.net.tls."""
    from cryptography import x509

    out = []
    for pem in pems:
        der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
        out.append(CertFacts.from_der(der).evidence())
    return out


def _cipher_versions(scan: TlsScan) -> list[str]:
    """internet.nl's choice: the highest version below 1.3, and 1.3 (older versions already
    fail the version criterion; their suites change nothing)."""
    below = [v for v in VERSION_NAMES[:-1] if scan.versions.get(v)]
    return below[-1:] + (["TLSv1.3"] if scan.versions.get("TLSv1.3") else [])


def _ciphers(session: Session) -> None:
    """Accepted suites by elimination (`_sslyze_ciphers`), or suite by suite with sslyze's
    plugin where elimination cannot be sure; why it gave way is kept in the scan's notes."""
    for version in _cipher_versions(session.scan):
        try:
            accepted = accepted_suites(session, version, _VERSIONS[version])
        except Unsettled as exc:
            session.scan.notes[f"ciphers {version}"] = f"tested one by one: {exc}"[:200]
            plugin = session.run_plugin(_CIPHER_COMMANDS[version])
            accepted = [_suite(s) for s in plugin.accepted_cipher_suites]
        session.scan.ciphers[version] = accepted


def _suite(accepted: CipherSuiteAcceptedByServer) -> dict[str, Any]:
    suite: dict[str, Any] = {"name": accepted.cipher_suite.name,
                             "openssl": accepted.cipher_suite.openssl_name}
    suite.update(_key_exchange(accepted.ephemeral_key))
    return suite


def _key_exchange(key: EphemeralKeyInfo | None) -> dict[str, Any]:
    if isinstance(key, EcDhEphemeralKeyInfo):
        return {"kex": "ECDH", "group": key.curve_name, "bits": key.size}
    if isinstance(key, DhEphemeralKeyInfo):
        name = ffdhe_group(int.from_bytes(key.prime, "big"),
                           int.from_bytes(key.generator, "big"))
        return {"kex": "DH", "group": name or f"custom-{key.size}", "bits": key.size}
    return {"kex": None}


def _cipher_order(session: Session) -> None:
    """Offer the accepted suites of the highest version below 1.3 worst first: a server that
    enforces a good order still picks its best; one that follows the client picks the worst."""
    scan = session.scan
    version = [v for v in VERSION_NAMES[:-1] if scan.versions.get(v)][-1]
    suites = scan.ciphers.get(version) or []
    rank = session.cipher_rank
    offered = sorted(suites, key=lambda s: rank(s["name"]))
    if len({rank(s["name"]) for s in offered}) < 2:
        scan.cipher_order = {"version": version, "offered": [s["name"] for s in offered],
                             "chose": offered[0]["name"] if offered else None}
        return
    cipher_list = ":".join(s["openssl"] for s in offered)
    conn = session.handshake(version, legacy=_needs_legacy(version, offered),
                             prepare=lambda client: client.set_cipher_list(cipher_list))
    chosen = conn.ssl_client.get_current_cipher_name()
    names = {s["openssl"]: s["name"] for s in offered}
    scan.cipher_order = {"version": version, "offered": [s["name"] for s in offered],
                         "chose": names.get(chosen, chosen)}


def _needs_legacy(version: str, suites: list[dict[str, Any]]) -> bool:
    from sslyze.plugins.openssl_cipher_suites._tls12_workaround import (
        WorkaroundForTls12ForCipherSuites as Workaround,
    )

    if version != "TLSv1.2":
        return True
    return any(Workaround.requires_legacy_openssl(s["openssl"]) for s in suites)


def _kex_hash(session: Session) -> None:
    """The weakest hash the server signs its key exchange with when a client offers only it
    (TLS 1.2): SHA-1, else SHA-224, else the SHA-2 family it picks itself."""
    scan = session.scan
    version = "TLSv1.2" if scan.versions.get("TLSv1.2") else None
    if version is None:
        scan.untested["kex_hash"] = "no TLS 1.2"
        return
    for digest in (OpenSslDigestNidEnum.SHA1, OpenSslDigestNidEnum.SHA224):
        try:
            conn = session.handshake(version, legacy=False, prepare=_only_hash(digest))
        except _REFUSALS:
            continue
        if conn.ssl_client.get_peer_signature_nid() == digest:
            scan.kex_hash = digest.name.lower()
            return
    scan.kex_hash = "sha256"


def _only_hash(digest: OpenSslDigestNidEnum) -> Callable[[Any], None]:
    """Offer signature algorithms with this one hash only (RSA, ECDSA, DSA keys)."""
    algorithms = [(digest, Pkey.RSA), (digest, Pkey.EC), (digest, Pkey.DSA)]
    return lambda client: client.set_signature_algorithms(algorithms)


def _compression(session: Session) -> None:
    """Whether the server picks DEFLATE when a hello offers it (RFC 3749), at TLS 1.2 when it
    speaks 1.3 (which has no compression), else at its highest version: the question sslyze's
    compression plugin asks, read from the ServerHello."""
    scan = session.scan
    downgraded = bool(scan.versions.get("TLSv1.3"))
    version = "TLSv1.2" if downgraded else max(
        (v for v, ok in scan.versions.items() if ok), key=VERSION_NAMES.index)
    if version == "SSLv2":
        raise RuntimeError("no compression in SSL 2.0 hellos to ask about")
    answer = session.hello(version, compression=True)
    if not answer.accepted and not downgraded:
        raise RuntimeError(f"the compression hello was refused ({answer.reason})")
    scan.compression = answer.accepted and answer.compression == 1


def _renegotiation(session: Session) -> None:
    """Secure renegotiation and how many client-initiated renegotiations the server allows.
    The first is the version probe's ServerHello (`_secure_renegotiation`); the second needs
    a real session that renegotiates, so it stays sslyze's job. A server at SSL 3.0 at best
    gets sslyze's whole plugin."""
    scan = session.scan
    secure = _secure_renegotiation(scan)
    if secure is None:
        result = session.run_plugin(ScanCommand.SESSION_RENEGOTIATION,
                                    SessionRenegotiationExtraArgument(RENEGOTIATION_ATTEMPTS))
        scan.secure_renegotiation = bool(result.supports_secure_renegotiation)
        scan.client_renegotiations = int(result.client_renegotiations_success_count)
        return
    _, (_, count) = session.run_job(_test_client_renegotiation, RENEGOTIATION_ATTEMPTS)
    scan.secure_renegotiation = secure
    scan.client_renegotiations = int(count)


def _secure_renegotiation(scan: TlsScan) -> bool | None:
    """Whether the server answered renegotiation_info (RFC 5746) at the version sslyze's
    plugin asks at: TLS 1.2 when the server speaks 1.3 (which has no renegotiation, so a
    1.3-only server passes, as in the plugin), else its highest. None: not read (SSL 3.0)."""
    below13 = [v for v in VERSION_NAMES[:-1] if scan.versions.get(v)]
    if scan.versions.get("TLSv1.3") and not scan.versions.get("TLSv1.2"):
        return True
    version = "TLSv1.2" if scan.versions.get("TLSv1.3") else (below13 or [""])[-1]
    return scan.renegotiation_info.get(version)


def _ems(session: Session) -> None:
    if not session.scan.versions.get("TLSv1.2"):
        return
    result = session.run_plugin(ScanCommand.TLS_EXTENDED_MASTER_SECRET)
    session.scan.extended_master_secret = bool(result.supports_ems_extension)


def _early_data(session: Session) -> None:
    session.scan.early_data = bool(
        session.run_plugin(ScanCommand.TLS_1_3_EARLY_DATA).supports_early_data)


def _ocsp(session: Session) -> None:
    """Ask for a stapled OCSP response; judge its signature against the CA bundle."""
    scan = session.scan
    version = max((v for v, ok in scan.versions.items() if ok), key=VERSION_NAMES.index)
    conn = session.handshake(version, prepare=lambda client: client.set_tlsext_status_ocsp())
    response = conn.ssl_client.get_tlsext_status_ocsp_resp()
    if response is None:
        scan.ocsp = {"stapled": False}
        return
    scan.ocsp = {"stapled": True, **_ocsp_facts(response, session.ca_bundle or certifi.where())}


def _ocsp_facts(response: Any, trust_store: str) -> dict[str, Any]:
    from pathlib import Path

    parsed = ocsp.load_der_ocsp_response(response.as_der_bytes())
    facts: dict[str, Any] = {"response_status": parsed.response_status.name.lower()}
    if parsed.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return {**facts, "valid": False}
    facts["cert_status"] = parsed.certificate_status.name.lower()
    facts["next_update"] = (parsed.next_update_utc.isoformat() if parsed.next_update_utc
                            else None)
    try:
        verify_ocsp_response(response, Path(trust_store))
        facts["signature"] = "trusted"
    except (OcspResponseNotTrustedError, OpenSSLError) as exc:
        facts["signature"] = f"not trusted ({exc})"[:120]
    facts["valid"] = facts["signature"] == "trusted" and facts["cert_status"] == "good"
    return facts
