"""Which cipher suites a server accepts at one TLS version, in about as many handshakes as it
accepts suites (a step of the full scan in `_sslyze_steps`).

Why not sslyze's cipher-suite plugin as it is: it opens one connection per suite it knows, 158
for TLS 1.2 however few the server accepts, each one a TCP connection and, on a mail server, a
whole SMTP greeting and STARTTLS. That was most of a full scan's cost (and of the lab's). The
same answer comes from elimination, as testssl.sh enumerates suites: offer every suite still
untested, note the one the server picks, offer the rest again, until the server refuses. A
server picks only suites it accepts, so the set is the same; each pick's ephemeral key is read
as the plugin reads it. It is asked only for versions that completed a handshake, so finding no
suite at all means the long offer itself was refused (old servers and middleboxes have choked
on large ClientHellos): the plugin then asks suite by suite.

Where the answer could differ, elimination gives way to the plugin for that version (every
suite one by one): no suite found at all, a handshake sslyze's own OpenSSL refused after the
server chose (its DH key too small, which means the suite is accepted but not which one), a
pick that was not offered or already seen, or a connection error that is not a refusal. The
two OpenSSL builds of nassl are asked apart, each for the suites sslyze would test on it.
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any

from nassl._nassl import OpenSSLError
from nassl.ssl_client import ClientCertificateRequested, SslClient
from sslyze.connection_helpers.tls_connection import NoCiphersAvailableBugInSSlyze
from sslyze.errors import (
    ConnectionToServerFailed,
    ServerRejectedTlsHandshake,
    ServerTlsConfigurationNotSupported,
    TlsHandshakeTimedOut,
)
from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import CipherSuiteAcceptedByServer
from sslyze.plugins.openssl_cipher_suites._tls12_workaround import (
    WorkaroundForTls12ForCipherSuites as Tls12Workaround,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite, CipherSuitesRepository
from sslyze.server_connectivity import TlsVersionEnum

if TYPE_CHECKING:
    from watchtower.net._sslyze_steps import Session

#: nassl's message when a cipher list names nothing this build can offer at this version.
_NOTHING_TO_OFFER = ("no cipher match", "no ciphers available")


class Unsettled(Exception):
    """Elimination cannot tell the accepted set for sure; test suite by suite instead."""


def accepted_suites(session: Session, version: str,
                    tls_version: TlsVersionEnum) -> list[CipherSuiteAcceptedByServer]:
    """The suites accepted at `version`, sorted as sslyze's plugin sorts them (by name,
    descending), so that the evidence is the same whichever way they were found."""
    accepted: list[CipherSuiteAcceptedByServer] = []
    for legacy, suites in _by_build(tls_version):
        accepted += _eliminate(session, version, legacy, suites)
    if not accepted:  # the version completed a handshake: a long offer was refused whole?
        raise Unsettled("no suite accepted, though the version completed a handshake")
    return sorted(accepted, key=attrgetter("cipher_suite.name"), reverse=True)


def _by_build(tls_version: TlsVersionEnum) -> list[tuple[bool, list[CipherSuite]]]:
    """The version's suites split by the OpenSSL build sslyze tests each one on."""
    suites = sorted(CipherSuitesRepository.get_all_cipher_suites(tls_version),
                    key=attrgetter("openssl_name"))
    if tls_version is TlsVersionEnum.TLS_1_3:
        return [(False, suites)]
    if tls_version is not TlsVersionEnum.TLS_1_2:
        return [(True, suites)]
    legacy = [s for s in suites if Tls12Workaround.requires_legacy_openssl(s.openssl_name)]
    modern = [s for s in suites if s not in legacy]
    return [(False, modern), (True, legacy)]


def _eliminate(session: Session, version: str, legacy: bool,
               suites: list[CipherSuite]) -> list[CipherSuiteAcceptedByServer]:
    remaining = {s.openssl_name: s for s in suites}
    accepted: list[CipherSuiteAcceptedByServer] = []
    while remaining:
        picked = _pick(session, version, legacy, list(remaining))
        if picked is None:
            break
        name, key = picked
        if name not in remaining:
            raise Unsettled(f"the server picked {name!r}, which was not offered")
        accepted.append(CipherSuiteAcceptedByServer(cipher_suite=remaining.pop(name),
                                                    ephemeral_key=key))
    return accepted


def _pick(session: Session, version: str, legacy: bool,
          names: list[str]) -> tuple[str, Any] | None:
    """One handshake offering `names`: the suite the server chose and its ephemeral key, or
    None when it refused them all (or this build can offer none of them at this version)."""
    conn = session.connection(version, legacy=legacy)
    client = conn.ssl_client
    try:
        try:
            if version == "TLSv1.3" and isinstance(client, SslClient):
                client.set_ciphersuites(":".join(names))
            else:
                client.set_cipher_list(":".join(names))
            conn.connect(should_retry_connection=False)
        except ClientCertificateRequested:
            pass  # the server chose its suite before it asked for a certificate
        except (ServerRejectedTlsHandshake, TlsHandshakeTimedOut):
            return None  # sslyze's plugin counts both as "rejected"
        except NoCiphersAvailableBugInSSlyze:
            return None
        except ServerTlsConfigurationNotSupported as exc:  # accepted, but which suite?
            raise Unsettled(exc.error_message) from exc
        except ConnectionToServerFailed:
            raise  # no server to ask: the plugin would fail the same way
        except OpenSSLError as exc:
            if any(m in str(exc) for m in _NOTHING_TO_OFFER):
                return None
            raise Unsettled(f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:  # an unknown TLS or socket error: not a refusal
            raise Unsettled(f"{type(exc).__name__}: {exc}") from exc
        name = client.get_current_cipher_name()
        if not name:
            raise Unsettled("no suite was negotiated")
        return name, client.get_ephemeral_key()
    finally:
        conn.close()
