"""The raw-hello version probe (watchtower/net/tlshello.py): against Python's own TLS server
for the answers a real stack gives, and against scripted loopback servers for the answers a
broken or hostile one gives (each must be a refusal or a timeout, never a hang or a crash).
Equality with whole nassl handshakes on nginx and Postfix is tested in
tests/integration/tls/test_tls_ncsc.py."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.servers.pki import TestPKI
from tests.unit.net.helpers import tcp_server
from watchtower.net import tlshello
from watchtower.net.tlshello import Answer

HOST = "hello.test"


def scripted(reply: Callable[[socket.socket], None]) -> AbstractContextManager[int]:
    """A loopback server that reads the hello and then does `reply` on each connection."""
    def serve(conn: socket.socket) -> None:
        conn.settimeout(5)
        conn.recv(65536)
        reply(conn)

    return tcp_server(serve)


@pytest.fixture(scope="module")
def tls12_13(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, list[bytes]]]:
    """Python's TLS server (the system OpenSSL) accepting TLS 1.2 and 1.3 only."""
    pki = TestPKI(tmp_path_factory.mktemp("pki"))
    issued = pki.issue("hello", HOST)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(issued.chain_path, issued.key_path)
    chain = [c.public_bytes(Encoding.DER) for c in
             x509.load_pem_x509_certificates(Path(issued.chain_path).read_bytes())]

    def handshake(conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with ctx.wrap_socket(conn, server_side=True):
                pass
        except ssl.SSLError:
            pass

    with tcp_server(handshake) as port:
        yield port, chain


def _ask(port: int, version: str, *, want_chain: bool = False) -> tlshello.VersionAnswer:
    return tlshello.ask("127.0.0.1", port, HOST, version, timeout=2.0, want_chain=want_chain)


@pytest.mark.parametrize(("version", "accepted"), [
    ("SSLv2", False), ("SSLv3", False), ("TLSv1", False), ("TLSv1.1", False),
    ("TLSv1.2", True), ("TLSv1.3", True)])
def test_a_real_tls_stack_accepts_exactly_its_versions(
        tls12_13: tuple[int, list[bytes]], version: str, accepted: bool) -> None:
    answer = _ask(tls12_13[0], version)
    assert answer.accepted is accepted, answer
    assert answer.answer is (Answer.ACCEPTED if accepted else Answer.REFUSED)


def test_the_chain_comes_in_the_clear_below_tls13(tls12_13: tuple[int, list[bytes]]) -> None:
    port, chain = tls12_13
    assert _ask(port, "TLSv1.2", want_chain=True).certificates == chain
    assert _ask(port, "TLSv1.2").certificates == []  # not asked: not read
    assert _ask(port, "TLSv1.3", want_chain=True).certificates == []  # encrypted there


def _record(kind: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", kind, version, len(body)) + body


def _server_hello(version: int, *, supported: int | None = None,
                  random: bytes = b"\x11" * 32, compression: int = 0) -> bytes:
    exts = b""
    if supported is not None:
        exts = struct.pack("!HHH", 43, 2, supported)
    body = struct.pack("!H", version) + random + b"\x00" + b"\x13\x01" + bytes([compression]) \
        + struct.pack("!H", len(exts)) + exts
    return _record(22, b"\x02" + len(body).to_bytes(3, "big") + body)


@pytest.mark.parametrize(("version", "script", "reason"), [
    ("TLSv1.2", lambda c: c.sendall(_record(21, b"\x02\x46")), "alert 70"),
    ("TLSv1.2", lambda c: None, "closed by the server"),
    ("TLSv1.2", lambda c: c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"),
     "not a TLS handshake record"),
    ("TLSv1.1", lambda c: c.sendall(_server_hello(0x0301)), "chose TLSv1"),
    ("TLSv1.3", lambda c: c.sendall(_server_hello(0x0303)), "chose TLSv1.2"),
    ("TLSv1.2", lambda c: c.sendall(_record(22, b"\x0b\x00\x00\x00")),
     "before the ServerHello"),
    ("SSLv2", lambda c: c.sendall(_record(21, b"\x02\x46")), "not an SSL 2.0 record"),
])
def test_a_broken_answer_is_a_refusal(version: str, script: Callable[[socket.socket], None],
                                      reason: str) -> None:
    with scripted(script) as port:
        answer = _ask(port, version)
    assert answer.answer is Answer.REFUSED and reason in answer.reason, answer


def test_a_hello_retry_request_accepts_tls13() -> None:
    hrr = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
    with scripted(lambda c: c.sendall(_server_hello(0x0303, supported=0x0304,
                                                    random=hrr))) as port:
        assert _ask(port, "TLSv1.3", want_chain=True).accepted


def test_an_endless_flight_is_cut() -> None:
    """The version was accepted by the ServerHello; what follows is read up to the cap only."""
    hello = _server_hello(0x0303)
    filler = _record(22, b"\x10" + (16000).to_bytes(3, "big") + b"\x00" * 16000)

    def flood(conn: socket.socket) -> None:
        conn.sendall(hello)
        for _ in range(40):
            conn.sendall(filler)

    with scripted(flood) as port:
        answer = _ask(port, "TLSv1.2", want_chain=True)
    assert answer.accepted and answer.certificates == [], answer


def test_a_silent_server_times_out_alone() -> None:
    gate = threading.Event()
    def hang(_conn: socket.socket) -> None:
        gate.wait(5)

    with scripted(hang) as port:
        answer = tlshello.ask("127.0.0.1", port, HOST, "TLSv1.2", timeout=0.3)
        gate.set()
    assert answer.answer is Answer.TIMED_OUT


def test_nobody_listening_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(tlshello.Unreachable):
        _ask(port, "TLSv1.2")


def test_the_hellos_offer_one_version_each() -> None:
    ssl3 = tlshello.client_hello("SSLv3", HOST)
    assert ssl3[1:3] == b"\x03\x00" and ssl3[9:11] == b"\x03\x00"
    body = ssl3[9:]
    suites_len = int.from_bytes(body[35:37], "big")
    assert len(body) == 35 + 2 + suites_len + 2  # compression, then no extensions
    tls13 = tlshello.client_hello("TLSv1.3", HOST)
    assert tls13[9:11] == b"\x03\x03" and b"\x00\x2b\x00\x03\x02\x03\x04" in tls13
    assert HOST.encode() in tls13
    assert b"127.0.0.1" not in tlshello.client_hello("TLSv1.2", "127.0.0.1")  # no SNI
    ssl2 = tlshello.sslv2_client_hello()
    assert ssl2[0] & 0x80 and ssl2[2] == 1 and ssl2[3:5] == b"\x00\x02"


def test_compression_is_offered_and_read_back() -> None:
    hello = tlshello.client_hello("TLSv1.2", HOST, compression=True)
    body = hello[9:]
    at = 35 + 2 + int.from_bytes(body[35:37], "big")
    assert body[at:at + 3] == b"\x02\x01\x00"  # DEFLATE, then null
    with scripted(lambda c: c.sendall(_server_hello(0x0303, compression=1))) as port:
        answer = tlshello.ask("127.0.0.1", port, HOST, "TLSv1.2", timeout=2.0,
                              compression=True)
    assert answer.accepted and answer.compression == 1
