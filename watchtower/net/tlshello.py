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
from collections.abc import Callable
from dataclasses import dataclass, field

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
_SERVER_HELLO, _CERTIFICATE = 2, 11
#: Messages after which a TLS 1.2-and-below flight has no Certificate left to send.
_AFTER_CERTIFICATE = {12, 13, 14}


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

    @property
    def accepted(self) -> bool:
        return self.answer is Answer.ACCEPTED


class Unreachable(OSError):
    """No TCP connection (or no STARTTLS): nobody to ask, as opposed to a refusal."""


def ask(address: str, port: int, host: str, version: str, *, timeout: float,
        preamble: Callable[[socket.socket, float], None] | None = None,
        want_chain: bool = False) -> VersionAnswer:
    """Connect, run `preamble` (an SMTP STARTTLS dialogue), send the hello, read the answer.
    `Unreachable` when the connection or the preamble fails; the preamble's own errors pass."""
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
        hello = sslv2_client_hello() if version == "SSLv2" else client_hello(version, host)
        sock.sendall(hello)
        reader = _Reader(sock)
        if version == "SSLv2":
            return _sslv2_answer(reader)
        return _answer(reader, VERSION_CODES[version], want_chain)
    except TimeoutError:
        return VersionAnswer(Answer.TIMED_OUT, "no answer within the timeout")
    except (ConnectionError, _Malformed) as exc:
        return VersionAnswer(Answer.REFUSED, str(exc) or type(exc).__name__)
    finally:
        sock.close()


# -- the hellos --------------------------------------------------------------------------------


def client_hello(version: str, host: str) -> bytes:
    """One TLS record holding a ClientHello that offers exactly `version`."""
    code = VERSION_CODES[version]
    tls13 = code == 0x0304
    body = (struct.pack("!H", 0x0303 if tls13 else code) + os.urandom(32)
            + _vec8(os.urandom(32) if tls13 else b"")
            + (_TLS13_SUITES_VEC if tls13 else _LEGACY_SUITES_VEC)
            + b"\x01\x00")  # compression: null only
    if code > 0x0300:
        body += _vec16(_extensions(host, tls13))
    message = bytes([1]) + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", _HANDSHAKE, 0x0300 if code == 0x0300 else 0x0301,
                       len(message)) + message


def _extensions(host: str, tls13: bool) -> bytes:
    exts = []
    name = host.rstrip(".").encode("idna") if host else b""
    if name and not _is_address(host):
        exts.append(_ext(0, _vec16(b"\x00" + _vec16(name))))
    exts.append(_ext(10, _GROUPS_VEC))
    exts.append(_ext(11, b"\x01\x00"))  # ec_point_formats: uncompressed
    exts.append(_ext(13, _SIGALGS_VEC))
    if tls13:
        exts.append(_ext(43, b"\x02\x03\x04"))  # supported_versions: TLS 1.3 only
        share = struct.pack("!H", _X25519) + _vec16(os.urandom(32))
        exts.append(_ext(51, _vec16(share)))
        exts.append(_ext(45, b"\x01\x01"))  # psk_key_exchange_modes: psk_dhe_ke
    else:
        exts.append(_ext(0xFF01, b"\x00"))  # renegotiation_info, empty
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


class _Malformed(Exception):
    """The bytes are not the answer of a TLS server to our hello."""


class _Reader:
    """Exact reads from the socket, counted against `MAX_FLIGHT_BYTES`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.total = 0

    def read(self, n: int) -> bytes:
        self.total += n
        if self.total > MAX_FLIGHT_BYTES:
            raise _Malformed(f"first flight longer than {MAX_FLIGHT_BYTES} bytes")
        chunks, left = [], n
        while left:
            chunk = self.sock.recv(left)
            if not chunk:
                raise _Malformed("closed by the server")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


def _answer(reader: _Reader, offered: int, want_chain: bool) -> VersionAnswer:
    """Read records until the ServerHello says which version (and, when asked and the version
    sends it in the clear, until the Certificate)."""
    messages = bytearray()
    accepted: VersionAnswer | None = None
    while True:
        kind, _, length = struct.unpack("!BHH", reader.read(5))
        if kind == _ALERT:
            alert = reader.read(min(length, 2))
            return VersionAnswer(Answer.REFUSED, f"alert {alert[-1]}" if alert else "alert")
        if kind != _HANDSHAKE or length > 18432:
            raise _Malformed(f"not a TLS handshake record (type {kind})")
        messages += reader.read(length)
        while len(messages) >= 4:
            mtype, mlen = messages[0], int.from_bytes(messages[1:4], "big")
            if len(messages) < 4 + mlen:
                break
            body = bytes(messages[4:4 + mlen])
            del messages[:4 + mlen]
            if accepted is None:
                if mtype != _SERVER_HELLO:
                    raise _Malformed(f"handshake message {mtype} before the ServerHello")
                chose, retry = _server_hello_version(body)
                if chose != offered:
                    return VersionAnswer(Answer.REFUSED, f"chose {_name(chose)}")
                accepted = VersionAnswer(Answer.ACCEPTED)
                if not want_chain or offered == 0x0304 or retry:
                    return accepted
            elif mtype == _CERTIFICATE:
                accepted.certificates = _certificates(body)
                return accepted
            elif mtype in _AFTER_CERTIFICATE:
                return accepted


def _server_hello_version(body: bytes) -> tuple[int, bool]:
    """The version a ServerHello selects, and whether it is a HelloRetryRequest."""
    if len(body) < 38:
        raise _Malformed("ServerHello too short")
    legacy = int.from_bytes(body[:2], "big")
    retry = body[2:34] == _HRR_RANDOM
    at = 35 + body[34] + 3  # session id, cipher suite, compression method
    if len(body) < at + 2:
        return legacy, retry
    end = min(len(body), at + 2 + int.from_bytes(body[at:at + 2], "big"))
    at += 2
    while at + 4 <= end:
        kind, size = struct.unpack("!HH", body[at:at + 4])
        if kind == 43 and size == 2:
            return int.from_bytes(body[at + 4:at + 6], "big"), retry
        at += 4 + size
    return legacy, retry


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
        raise _Malformed("not an SSL 2.0 record")  # a TLS alert or record, most often
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
