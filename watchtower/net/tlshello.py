"""Does a server accept one protocol version? Asked with a hand-built ClientHello and answered
from the server's first flight, without a TLS library (the version probe of the full scan,
`watchtower.net._sslyze_steps.detect_versions`).

Why by hand: the question "does SSL 2.0, 3.0, TLS 1.0, 1.1, 1.2, 1.3 complete a handshake" is
asked of every HTTPS endpoint and MX each sweep, six connections each. Through nassl each was a
full OpenSSL handshake (context, key exchange, certificate parsing): 1-3 ms of client CPU, most
of `web.tls.version`'s cost and a fifth of a full scan's. The server's answer is decided by its
first message: a ServerHello that selects the version offered (RFC 5246 7.4.1.3; for TLS 1.3
the `supported_versions` extension, RFC 8446 4.2.1, also in a HelloRetryRequest), or an alert,
a close, or a lower version. Reading that costs a ClientHello of a kilobyte and one parse.

What the hello offers, so that any server that would complete a handshake with some client at
that version can answer it: every cipher-suite code point of the TLS registry ranges in use
(0x0001-0x00FF, 0xC001-0xC0FF, the ChaCha20 ones; TLS 1.3 its five), every named group, the
signature algorithms in use, SNI, and for SSL 3.0 no extensions at all (as OpenSSL 1.0.2 sent
it). SSL 2.0 is its own record format (draft-hickman-netscape-ssl-00): a SERVER-HELLO with a
cipher spec is acceptance.

For TLS 1.2 and below the Certificate message follows in the clear, so the lowest accepted
version also gives the chain the full scan grades (as nassl's first completed handshake did).
"""

from __future__ import annotations

import enum
import os
import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from watchtower.net.tlsgroups import ffdhe_group

#: Wire code of each version name of `tlsscan_result.VERSION_NAMES` (SSL 2.0 has its own hello).
VERSION_CODES = {"SSLv3": 0x0300, "TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303,
                 "TLSv1.3": 0x0304}
_LEGACY_SUITES = [*range(0x0001, 0x0100), *range(0xC001, 0xC100), *range(0xCCA8, 0xCCAF),
                  0xCC13, 0xCC14, 0xCC15]
_TLS13_SUITES = [0x1301, 0x1302, 0x1303, 0x1304, 0x1305]
#: SSL 2.0 cipher specs (RC4, RC2, IDEA, DES, 3DES and their export forms).
_SSL2_SPECS = (0x010080, 0x020080, 0x030080, 0x040080, 0x050080, 0x060040, 0x0700C0)
#: Named groups: the old named curves 1-25, x25519, x448, and the RFC 7919 FFDHE groups.
_GROUPS = [0x001D, 0x0017, 0x0018, 0x0019, 0x001E, *range(0x0100, 0x0105),
           *(g for g in range(0x0001, 0x0017))]
_SIGALGS = [0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080A,
            0x080B, 0x0401, 0x0501, 0x0601, 0x0303, 0x0203, 0x0301, 0x0201, 0x0402, 0x0502,
            0x0602, 0x0302, 0x0202]
_X25519 = 0x001D
#: The renegotiation_info extension (RFC 5746 3.2): offered empty in every TLS 1.0-1.2 hello;
#: a server that supports secure renegotiation answers it in its ServerHello.
RENEGOTIATION_INFO = 0xFF01
#: The named groups each of nassl's OpenSSL builds offers (read off their ClientHellos): the
#: server's pick of curve depends on the client's list, so cipher-suite elimination offers the
#: list of the build sslyze's plugin tests that suite on, and its evidence names the same group.
MODERN_GROUPS = (0x001D, 0x0017, 0x001E, 0x0019, 0x0018)
LEGACY_GROUPS = (0x0017, 0x0019, 0x001C, 0x001B, 0x0018, 0x001A, 0x0016, 0x000E, 0x000D,
                 0x000B, 0x000C, 0x0009, 0x000A)


def _codes(codes: list[int]) -> bytes:
    return struct.pack(f"!H{len(codes)}H", 2 * len(codes), *codes)


#: The offers as wire vectors, built once: only the randoms differ between hellos.
_LEGACY_SUITES_VEC, _TLS13_SUITES_VEC = _codes(_LEGACY_SUITES), _codes(_TLS13_SUITES)
_GROUPS_VEC, _SIGALGS_VEC = _codes(_GROUPS), _codes(_SIGALGS)
#: RFC 8446 4.1.3: the ServerHello.random of a HelloRetryRequest.
_HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
#: A first flight larger than this is not a server's answer to a hello: stop reading.
MAX_FLIGHT_BYTES = 256 * 1024
_HANDSHAKE, _ALERT = 22, 21
_SERVER_HELLO, _CERTIFICATE, _SERVER_KEY_EXCHANGE = 2, 11, 12
#: Messages after which a TLS 1.2-and-below flight has no Certificate or key exchange to come.
_AFTER_CERTIFICATE = {13, 14}



class Answer(enum.Enum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    TIMED_OUT = "timed out"


@dataclass(slots=True)
class VersionAnswer:
    """What the server answered to a hello offering one version."""

    answer: Answer
    #: Why not accepted, in a few words (an alert's number, "closed", "chose TLSv1.2").
    reason: str = ""
    #: The chain as sent (DER, leaf first); TLS 1.2 and below, when asked for.
    certificates: list[bytes] = field(default_factory=list)
    #: The ServerHello's chosen suite, compression method and extensions (type -> data).
    cipher: int | None = None
    compression: int | None = None
    extensions: dict[int, bytes] = field(default_factory=dict)
    #: The ServerKeyExchange body (TLS 1.2 and below), when asked for and sent.
    server_key_exchange: bytes | None = None
    #: The ServerHello was a HelloRetryRequest (TLS 1.3: the server wants another key share).
    retry: bool = False

    @property
    def accepted(self) -> bool:
        return self.answer is Answer.ACCEPTED


class Unreachable(OSError):
    """No TCP connection (or no STARTTLS): nobody to ask, as opposed to a refusal."""


def ask(address: str, port: int, host: str, version: str, *, timeout: float,
        preamble: Callable[[socket.socket, float], None] | None = None,
        want_chain: bool = False, want_key: bool = False,
        suites: Sequence[int] | None = None,
        groups: Sequence[int] | None = None, compression: bool = False) -> VersionAnswer:
    """Connect, run `preamble` (an SMTP STARTTLS dialogue), send the hello, read the answer.
    `suites` and `groups` replace the offer of every suite of the version and every named
    group (cipher-suite elimination); `compression` offers DEFLATE before null (RFC 3749);
    `want_key` reads on to the ServerKeyExchange. `Unreachable` when the connection fails; the
    preamble's own errors pass."""
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except TimeoutError:
        return VersionAnswer(Answer.TIMED_OUT, "connect timed out")
    except OSError as exc:
        raise Unreachable(f"cannot connect ({exc.strerror or exc})") from exc
    try:
        if preamble is not None:
            preamble(sock, timeout)
        sock.settimeout(timeout)
        hello = (sslv2_client_hello() if version == "SSLv2"
                 else client_hello(version, host, suites, groups, compression=compression))
        sock.sendall(hello)
        reader = _Reader(sock)
        if version == "SSLv2":
            return _sslv2_answer(reader)
        return _answer(reader, VERSION_CODES[version], want_chain, want_key)
    except TimeoutError:
        return VersionAnswer(Answer.TIMED_OUT, "no answer within the timeout")
    except (ConnectionError, _Refusal) as exc:
        return VersionAnswer(Answer.REFUSED, str(exc) or type(exc).__name__)
    finally:
        sock.close()


# -- the hellos --------------------------------------------------------------------------------


def client_hello(version: str, host: str, suites: Sequence[int] | None = None,
                 groups: Sequence[int] | None = None, *, compression: bool = False) -> bytes:
    """One TLS record holding a ClientHello that offers exactly `version` (and `suites`, or
    every suite code point of that version; `groups`, or every named group)."""
    code = VERSION_CODES[version]
    tls13 = code == 0x0304
    offer = (_codes(list(suites)) if suites is not None
             else _TLS13_SUITES_VEC if tls13 else _LEGACY_SUITES_VEC)
    body = (struct.pack("!H", 0x0303 if tls13 else code) + os.urandom(32)
            + _vec8(os.urandom(32) if tls13 else b"")
            + offer
            + (b"\x02\x01\x00" if compression else b"\x01\x00"))  # DEFLATE?, null
    if code > 0x0300:
        body += _vec16(_extensions(host, tls13,
                                   _GROUPS_VEC if groups is None else _codes(list(groups))))
    message = bytes([1]) + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", _HANDSHAKE, 0x0300 if code == 0x0300 else 0x0301,
                       len(message)) + message


def _extensions(host: str, tls13: bool, groups: bytes) -> bytes:
    exts = []
    name = host.rstrip(".").encode("idna") if host else b""
    if name and not _is_address(host):
        exts.append(_ext(0, _vec16(b"\x00" + _vec16(name))))
    exts.append(_ext(10, groups))
    exts.append(_ext(11, b"\x01\x00"))  # ec_point_formats: uncompressed
    exts.append(_ext(13, _SIGALGS_VEC))
    if tls13:
        exts.append(_ext(43, b"\x02\x03\x04"))  # supported_versions: TLS 1.3 only
        share = struct.pack("!H", _X25519) + _vec16(os.urandom(32))
        exts.append(_ext(51, _vec16(share)))
        exts.append(_ext(45, b"\x01\x01"))  # psk_key_exchange_modes: psk_dhe_ke
    else:
        exts.append(_ext(RENEGOTIATION_INFO, b"\x00"))  # empty: an initial handshake
    return b"".join(exts)


def sslv2_client_hello() -> bytes:
    """An SSL 2.0 CLIENT-HELLO (two-byte record header, no session, 16-byte challenge)."""
    specs = b"".join(s.to_bytes(3, "big") for s in _SSL2_SPECS)
    challenge = os.urandom(16)
    body = bytes([1]) + struct.pack("!HHHH", 0x0002, len(specs), 0, len(challenge)) \
        + specs + challenge
    return struct.pack("!H", 0x8000 | len(body)) + body


def _is_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def _ext(kind: int, data: bytes) -> bytes:
    return struct.pack("!HH", kind, len(data)) + data


def _vec8(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def _vec16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


# -- the answers -------------------------------------------------------------------------------


class _Refusal(Exception):
    """The server's bytes say no, or are not a TLS server's answer to our hello."""


class _Reader:
    """Exact reads from the socket, counted against `MAX_FLIGHT_BYTES`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.total = 0

    def read(self, n: int) -> bytes:
        self.total += n
        if self.total > MAX_FLIGHT_BYTES:
            raise _Refusal(f"first flight longer than {MAX_FLIGHT_BYTES} bytes")
        chunks, left = [], n
        while left:
            chunk = self.sock.recv(left)
            if not chunk:
                raise _Refusal("closed by the server")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


def _answer(reader: _Reader, offered: int, want_chain: bool, want_key: bool) -> VersionAnswer:
    """Read until the ServerHello says which version; then, when asked and the version sends
    them in the clear, on to the Certificate and the ServerKeyExchange. Once the version is
    accepted, a flight that breaks off later leaves it accepted, without what was missing."""
    messages = _messages(reader)
    kind, body = next(messages)
    if kind != _SERVER_HELLO:
        raise _Refusal(f"handshake message {kind} before the ServerHello")
    answer, chose = _server_hello(body)
    if chose != offered:
        return VersionAnswer(Answer.REFUSED, f"chose {_name(chose)}")
    if offered == 0x0304:
        return answer  # the rest is encrypted
    try:
        while want_chain or want_key:
            kind, body = next(messages)
            if kind == _CERTIFICATE:
                answer.certificates, want_chain = _certificates(body), False
            elif kind == _SERVER_KEY_EXCHANGE:
                answer.server_key_exchange, want_chain, want_key = body, False, False
            elif kind in _AFTER_CERTIFICATE:
                break
    except (_Refusal, TimeoutError, ConnectionError):
        pass
    return answer


def _messages(reader: _Reader) -> Iterator[tuple[int, bytes]]:
    """Handshake messages (type, body) as the records bring them; an alert or a record of
    another kind is a `_Refusal`."""
    pending = bytearray()
    while True:
        kind, _, length = struct.unpack("!BHH", reader.read(5))
        if kind == _ALERT:
            alert = reader.read(min(length, 2))
            raise _Refusal(f"alert {alert[-1]}" if alert else "alert")
        if kind != _HANDSHAKE or length > 18432:
            raise _Refusal(f"not a TLS handshake record (type {kind})")
        pending += reader.read(length)
        while len(pending) >= 4:
            size = int.from_bytes(pending[1:4], "big")
            if len(pending) < 4 + size:
                break
            message = bytes(pending[:4 + size])
            del pending[:4 + size]
            yield message[0], message[4:]


def _server_hello(body: bytes) -> tuple[VersionAnswer, int]:
    """The ServerHello's facts (RFC 8446 4.1.3; RFC 5246 7.4.1.3) and the version it selects:
    `supported_versions` when sent (TLS 1.3), else the legacy field."""
    if len(body) < 38 or len(body) < 38 + body[34]:
        raise _Refusal("ServerHello too short")
    at = 35 + body[34]  # version, random, session id
    answer = VersionAnswer(Answer.ACCEPTED, cipher=int.from_bytes(body[at:at + 2], "big"),
                           compression=body[at + 2], retry=body[2:34] == _HRR_RANDOM)
    at += 3
    if len(body) >= at + 2:
        end = min(len(body), at + 2 + int.from_bytes(body[at:at + 2], "big"))
        at += 2
        while at + 4 <= end:
            kind, size = struct.unpack("!HH", body[at:at + 4])
            answer.extensions[kind] = body[at + 4:at + 4 + size]
            at += 4 + size
    chosen = answer.extensions.get(43, b"")
    version = int.from_bytes(chosen if len(chosen) == 2 else body[:2], "big")
    return answer, version


def _certificates(body: bytes) -> list[bytes]:
    out, at = [], 3
    end = min(len(body), 3 + int.from_bytes(body[:3], "big"))
    while at + 3 <= end:
        size = int.from_bytes(body[at:at + 3], "big")
        out.append(body[at + 3:at + 3 + size])
        at += 3 + size
    return out


def _sslv2_answer(reader: _Reader) -> VersionAnswer:
    head = reader.read(2)
    if not head[0] & 0x80:
        raise _Refusal("not an SSL 2.0 record")  # a TLS alert or record, most often
    body = reader.read(((head[0] & 0x7F) << 8) | head[1])
    if len(body) < 11 or body[0] != 4:
        return VersionAnswer(Answer.REFUSED, "no SERVER-HELLO")
    version, _cert_len, specs_len = struct.unpack("!HHH", body[3:9])
    if version != 0x0002 or not specs_len:
        return VersionAnswer(Answer.REFUSED, "no common SSL 2.0 cipher")
    return VersionAnswer(Answer.ACCEPTED)


def _name(code: int) -> str:
    names = {v: k for k, v in VERSION_CODES.items()}
    return names.get(code, f"0x{code:04x}")


# -- the key exchange --------------------------------------------------------------------------

#: Named groups as the scan's evidence names them (nassl's names; `bits` is OpenSSL's
#: EVP_PKEY_bits, so X25519 is 253). Others are rare enough to leave to OpenSSL.
_EC_GROUPS = {0x0017: ("secp256r1", 256), 0x0018: ("secp384r1", 384),
              0x0019: ("secp521r1", 521), 0x001D: ("X25519", 253), 0x001E: ("X448", 448),
              0x001A: ("brainpoolP256r1", 256), 0x001B: ("brainpoolP384r1", 384),
              0x001C: ("brainpoolP512r1", 512), 0x001F: ("brainpoolP256r1", 256),
              0x0020: ("brainpoolP384r1", 384), 0x0021: ("brainpoolP512r1", 512)}
_FFDHE_GROUPS = {0x0100: 2048, 0x0101: 3072, 0x0102: 4096, 0x0103: 6144, 0x0104: 8192}
#: Key exchanges whose ServerKeyExchange this reader does not parse.
_UNREAD_KEX = ("PSK", "SRP", "KRB5", "GOST", "ECCPWD")


def key_exchange(answer: VersionAnswer, version: str, suite: str) -> dict[str, Any] | None:
    """The ephemeral key of the suite the server chose, as the scan's evidence has it:
    {"kex": "ECDH"|"DH", "group", "bits"}, {"kex": None} for a suite without one (RSA or
    static key exchange), or None where this reader cannot tell (ask OpenSSL instead). TLS 1.3
    names the group in the ServerHello's key_share (RFC 8446 4.2.8); below it the
    ServerKeyExchange carries the curve (RFC 8422 5.4) or the DH prime and generator (RFC 5246
    7.4.3), whose RFC 7919 groups are recognised by the prime (`tlsgroups`)."""
    if version == "TLSv1.3":
        share = answer.extensions.get(51, b"")
        return _group(int.from_bytes(share[:2], "big")) if len(share) >= 2 else None
    if any(kind in suite for kind in _UNREAD_KEX):
        return None
    ske = answer.server_key_exchange
    if "ECDHE" in suite or "ECDH_anon" in suite:
        if not ske or len(ske) < 3 or ske[0] != 3:  # named_curve
            return None
        return _group(int.from_bytes(ske[1:3], "big"))
    if "DHE" in suite or "DH_anon" in suite:
        return _dh_params(ske) if ske else None
    return {"kex": None}


def _group(code: int) -> dict[str, Any] | None:
    if code in _EC_GROUPS:
        name, bits = _EC_GROUPS[code]
        return {"kex": "ECDH", "group": name, "bits": bits}
    if code in _FFDHE_GROUPS:
        return {"kex": "DH", "group": f"ffdhe{_FFDHE_GROUPS[code]}", "bits": _FFDHE_GROUPS[code]}
    return None


def _dh_params(ske: bytes) -> dict[str, Any] | None:
    p_len = int.from_bytes(ske[:2], "big")
    g_at = 2 + p_len
    if len(ske) < g_at + 2:
        return None
    g_len = int.from_bytes(ske[g_at:g_at + 2], "big")
    prime = int.from_bytes(ske[2:g_at], "big")
    generator = int.from_bytes(ske[g_at + 2:g_at + 2 + g_len], "big")
    bits = prime.bit_length()
    name = ffdhe_group(prime, generator)
    return {"kex": "DH", "group": name or f"custom-{bits}", "bits": bits}
