"""The SMTP dialogue of watchtower.net.smtp against scripted loopback servers.

Each server here misbehaves in one way a real MX does (never greets, greets forever, hides
STARTTLS, injects bytes before TLS, relays for anyone); the dialogue must turn each into a
precise fact or error within the probe deadline, and must never send DATA.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from watchtower.lab.ca import LabCA
from watchtower.net.dns import Resolver, Server
from watchtower.net.smtp import SmtpProber
from watchtower.net.smtp_dialogue import MAX_REPLY_BYTES, SmtpConversation
from watchtower.net.tls import TlsProber

Handler = Callable[[socket.socket], None]


class Scripted:
    """A loopback TCP server running `handler` for every connection, recording commands."""

    def __init__(self, handler: Handler) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.stopped = False
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stopped = True
        self.sock.close()


def lines(conn: socket.socket | ssl.SSLSocket) -> Iterator[str]:
    buf = b""
    while True:
        while b"\r\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        yield line.decode()


@pytest.fixture(scope="module")
def tls_ctx(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    ca = LabCA(tmp_path_factory.mktemp("smtp-ca"))
    issued = ca.issue(["mx.example.test"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(issued.cert_path, issued.key_path)
    return ctx, str(ca.cert_path)


def prober(ca: str | None = None, timeout: float = 2.0) -> SmtpProber:
    tls = TlsProber(Resolver([Server("127.0.0.1", 9)]), ca_bundle=ca, timeout=timeout)
    return SmtpProber(tls, helo="probe.example.test", timeout=timeout, legacy_versions=())


def mta(tls: ssl.SSLContext | None, *, relay: bool = False, seen: list[str] | None = None
        ) -> Handler:
    """A minimal MTA: EHLO, optional STARTTLS, MAIL/RCPT (relay or not), RSET, QUIT."""

    def handle(conn: socket.socket) -> None:
        conn.sendall(b"220 mx.example.test ESMTP\r\n")
        stream: socket.socket | ssl.SSLSocket = conn
        it = lines(stream)
        while True:
            try:
                line = next(it)
            except StopIteration:
                return
            if seen is not None:
                seen.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                caps = ["250-mx.example.test", "250-PIPELINING"]
                if tls is not None and not isinstance(stream, ssl.SSLSocket):
                    caps.append("250-STARTTLS")
                caps.append("250 8BITMIME")
                stream.sendall(("\r\n".join(caps) + "\r\n").encode())
            elif verb == "STARTTLS" and tls is not None:
                stream.sendall(b"220 2.0.0 go ahead\r\n")
                stream = tls.wrap_socket(conn, server_side=True)
                it = lines(stream)
            elif verb == "MAIL":
                stream.sendall(b"250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                stream.sendall(b"250 2.1.5 Ok\r\n" if relay
                               else b"554 5.7.1 Relay access denied\r\n")
            elif verb == "QUIT":
                stream.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                stream.sendall(b"250 2.0.0 Ok\r\n")

    return handle


def test_starttls_dialogue_yields_tls_facts(tls_ctx: tuple[ssl.SSLContext, str]) -> None:
    ctx, ca = tls_ctx
    srv = Scripted(mta(ctx))
    try:
        out = prober(ca).starttls("mx.example.test", "127.0.0.1", srv.port,
                                  deadline=time.monotonic() + 5)
    finally:
        srv.close()
    assert out.error is None, out.error
    assert out.banner == "220 mx.example.test ESMTP"
    assert "STARTTLS" in out.capabilities
    assert out.tls is not None and out.tls.verified
    assert out.tls.version in ("TLSv1.2", "TLSv1.3")
    assert out.tls.leaf is not None and out.tls.leaf.names == ["mx.example.test"]


def test_no_starttls_is_a_fact_not_a_crash() -> None:
    srv = Scripted(mta(None))
    try:
        out = prober().starttls("mx.example.test", "127.0.0.1", srv.port,
                                deadline=time.monotonic() + 5)
    finally:
        srv.close()
    assert out.error_kind == "no-starttls"
    assert out.starttls_offered is False
    assert out.tls is None


def test_silent_server_times_out_within_the_deadline() -> None:
    gate = threading.Event()
    srv = Scripted(lambda conn: gate.wait(10))
    started = time.monotonic()
    try:
        out = prober(timeout=5).starttls("mx.example.test", "127.0.0.1", srv.port,
                                         deadline=time.monotonic() + 0.5)
    finally:
        gate.set()
        srv.close()
    assert out.error_kind == "timeout"
    assert time.monotonic() - started < 1.5


def test_huge_banner_is_cut() -> None:
    def flood(conn: socket.socket) -> None:
        conn.sendall(b"220-" + b"x" * (MAX_REPLY_BYTES * 4))
        time.sleep(1)

    srv = Scripted(flood)
    try:
        out = prober().starttls("mx.example.test", "127.0.0.1", srv.port,
                                deadline=time.monotonic() + 3)
    finally:
        srv.close()
    assert out.error_kind == "protocol"
    assert out.error is not None and "cut" in out.error and len(out.error) < 600


def test_bytes_injected_before_tls_are_refused(tls_ctx: tuple[ssl.SSLContext, str]) -> None:
    def inject(conn: socket.socket) -> None:
        it = lines(conn)
        conn.sendall(b"220 mx ESMTP\r\n")
        next(it)
        conn.sendall(b"250-mx\r\n250 STARTTLS\r\n")
        next(it)
        conn.sendall(b"220 go ahead\r\n250 injected\r\n")
        time.sleep(0.5)

    srv = Scripted(inject)
    try:
        out = prober(tls_ctx[1]).starttls("mx.example.test", "127.0.0.1", srv.port,
                                          deadline=time.monotonic() + 3)
    finally:
        srv.close()
    assert out.error_kind == "protocol"
    assert "before TLS" in (out.error or "")


def test_banner_other_than_220() -> None:
    srv = Scripted(lambda conn: conn.sendall(b"554 5.3.2 go away\r\n"))
    try:
        out = prober().starttls("mx.example.test", "127.0.0.1", srv.port,
                                deadline=time.monotonic() + 3)
    finally:
        srv.close()
    assert out.error_kind == "banner"
    assert out.banner == "554 5.3.2 go away"


@pytest.mark.parametrize("relay", [False, True])
def test_relay_probe_stops_at_rcpt_and_never_sends_data(
        tls_ctx: tuple[ssl.SSLContext, str], relay: bool) -> None:
    seen: list[str] = []
    srv = Scripted(mta(tls_ctx[0], relay=relay, seen=seen))
    try:
        out = prober().relay("mx.example.test", "127.0.0.1", srv.port,
                             deadline=time.monotonic() + 5)
    finally:
        srv.close()
    assert out.error is None, out.error
    assert out.tls is True  # upgraded first, as a spammer would
    assert out.rcpt_code == (250 if relay else 554)
    verbs = [s.split(" ", 1)[0].split(":")[0].upper() for s in seen]
    assert verbs == ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "RSET", "QUIT"]
    assert "DATA" not in verbs


def test_conversation_refuses_data_whatever_the_caller_asks() -> None:
    a, b = socket.socketpair()
    try:
        conv = SmtpConversation(a, "pair", None, 1.0)
        for verb in ("DATA", "data", "BDAT 10 LAST"):
            with pytest.raises(ValueError):
                conv.command(verb)
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            b.recv(10)  # nothing reached the wire
    finally:
        a.close()
        b.close()


def test_results_are_shared_per_prober(tls_ctx: tuple[ssl.SSLContext, str]) -> None:
    seen: list[str] = []
    srv = Scripted(mta(tls_ctx[0], seen=seen))
    p = prober(tls_ctx[1])
    try:
        first = p.starttls("mx.example.test", "127.0.0.1", srv.port,
                           deadline=time.monotonic() + 5)
        second = p.starttls("MX.example.test", "127.0.0.1", srv.port,
                            deadline=time.monotonic() + 5)
    finally:
        srv.close()
    assert first is second
    assert seen.count("STARTTLS") == 1


def test_unreachable_port_is_an_error_kind() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = prober().starttls("mx.example.test", "127.0.0.1", port,
                            deadline=time.monotonic() + 2)
    assert out.error_kind == "unreachable"
    assert out.banner is None and out.tls is None
