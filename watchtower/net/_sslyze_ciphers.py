"""Which cipher suites a server accepts at one TLS version, in about as many hellos as it
accepts suites (a step of the full scan in `_sslyze_steps`).

Why not sslyze's cipher-suite plugin as it is: it opens one connection per suite it knows, 158
for TLS 1.2 however few the server accepts, each one a TCP connection and, on a mail server, a
whole SMTP greeting and STARTTLS. The same answer comes from elimination, as testssl.sh
enumerates suites: offer every suite still untested, note the one the server picks, offer the
rest again, until the server refuses. A server picks only suites it accepts, so the set is the
same. The suites are sslyze's for the version (its repository, so the evidence names them as
the plugin does), offered by code point (tls_parser's IANA table, sslyze's own dependency) in
raw hellos (`tlshello`): which suite the server picks is the ServerHello's, and its ephemeral
key the ServerHello's key share (TLS 1.3) or the ServerKeyExchange (below), both in the clear.
No OpenSSL handshake is needed, which cost 4-5 ms of CPU each. sslyze tests most TLS 1.2
suites on nassl's legacy OpenSSL, which offers other named groups than the modern one, and the
server's pick of curve follows the client's list: each build's suites are offered apart, with
that build's groups (`tlshello.MODERN_GROUPS`, `LEGACY_GROUPS`), so the evidence names the
group the plugin would.

It is asked only for versions that were accepted, so finding no suite at all means the long
offer itself was refused (old servers and middleboxes have choked on large ClientHellos).
Where the answer could differ, elimination gives way to the plugin for that version (every
suite one by one, through OpenSSL): no suite found at all, a pick that was not offered or
already seen, a key exchange this reader does not parse, a suite without a known code point,
or an SMTP opening that failed.
"""

from __future__ import annotations

import functools
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from sslyze.plugins.openssl_cipher_suites._tls12_workaround import (
    WorkaroundForTls12ForCipherSuites as Tls12Workaround,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite, CipherSuitesRepository
from sslyze.server_connectivity import TlsVersionEnum
from tls_parser.cipher_suites import CipherSuites as IanaSuites

from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.net import tlshello

if TYPE_CHECKING:
    from watchtower.net._sslyze_steps import Session

#: RFC 8446 B.4 (tls_parser's table stops at TLS 1.2).
_TLS13_CODES = {"TLS_AES_128_GCM_SHA256": 0x1301, "TLS_AES_256_GCM_SHA384": 0x1302,
                "TLS_CHACHA20_POLY1305_SHA256": 0x1303, "TLS_AES_128_CCM_SHA256": 0x1304,
                "TLS_AES_128_CCM_8_SHA256": 0x1305}


class Unsettled(Exception):
    """Elimination cannot tell the accepted set for sure; test suite by suite instead."""


def accepted_suites(session: Session, version: str,
                    tls_version: TlsVersionEnum) -> list[dict[str, Any]]:
    """The suites accepted at `version` in the scan's evidence form (name, OpenSSL name, key
    exchange), sorted as sslyze's plugin sorts them (by name, descending), so that the
    evidence is the same whichever way they were found. Each of nassl's builds' suites is
    offered apart, with that build's named groups."""
    accepted: list[dict[str, Any]] = []
    for groups, suites in _by_build(tls_version):
        accepted += _eliminate(session, version, groups, suites)
    if not accepted:  # the version was accepted: a long offer was refused whole?
        raise Unsettled("no suite accepted, though the version was")
    return sorted(accepted, key=lambda s: str(s["name"]), reverse=True)


def _eliminate(session: Session, version: str, groups: tuple[int, ...],
               suites: dict[int, CipherSuite]) -> list[dict[str, Any]]:
    remaining = dict(suites)
    accepted: list[dict[str, Any]] = []
    while remaining:
        answer = _pick(session, version, list(remaining), groups)
        if not answer.accepted:
            break
        suite = remaining.pop(answer.cipher or 0, None)
        if suite is None:
            raise Unsettled(f"the server picked 0x{answer.cipher or 0:04x}, which was not "
                            "offered")
        kex = tlshello.key_exchange(answer, version, suite.name)
        if kex is None:
            raise Unsettled(f"the key exchange of {suite.name} is not read here")
        accepted.append({"name": suite.name, "openssl": suite.openssl_name, **kex})
    return accepted


@functools.cache
def _by_build(tls_version: TlsVersionEnum) -> list[tuple[tuple[int, ...], dict[int, CipherSuite]]]:
    """The version's suites by code point, split by the OpenSSL build sslyze tests each one
    on, with that build's named groups."""
    by_code = _suites_by_code(tls_version)
    if tls_version is TlsVersionEnum.TLS_1_3:
        return [(tlshello.MODERN_GROUPS, by_code)]
    if tls_version is not TlsVersionEnum.TLS_1_2:
        return [(tlshello.LEGACY_GROUPS, by_code)]
    legacy = {c: s for c, s in by_code.items()
              if Tls12Workaround.requires_legacy_openssl(s.openssl_name)}
    modern = {c: s for c, s in by_code.items() if c not in legacy}
    return [(tlshello.MODERN_GROUPS, modern), (tlshello.LEGACY_GROUPS, legacy)]


def _pick(session: Session, version: str, codes: list[int],
          groups: tuple[int, ...]) -> tlshello.VersionAnswer:
    """One hello offering `codes`; a refusal or a timeout is "none of these" (as the plugin
    counts both), an SMTP opening that fails is for OpenSSL to retry."""
    try:
        return session.hello(version, suites=codes, groups=groups, want_key=True)
    except ProbeTimeout:
        raise
    except ProbeError as exc:
        raise Unsettled(exc.reason) from exc


@functools.cache
def _suites_by_code(tls_version: TlsVersionEnum) -> dict[int, CipherSuite]:
    """sslyze's suites for the version by IANA code point (in OpenSSL-name order)."""
    out: dict[int, CipherSuite] = {}
    suites = sorted(CipherSuitesRepository.get_all_cipher_suites(tls_version),
                    key=attrgetter("openssl_name"))
    for suite in suites:
        code = _TLS13_CODES.get(suite.name)
        if code is None:
            member = IanaSuites.__members__.get(suite.name)
            if member is None:
                raise Unsettled(f"no code point known for {suite.name}")
            code = member.value
        out.setdefault(code, suite)
    return out
