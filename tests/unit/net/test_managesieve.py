"""The ManageSieve client against hostile and malformed servers: every bad answer is a
ProbeError (so the check says `error`), never a hang, a crash or an unbounded read."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable

import pytest

from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.net.managesieve import (
    MAX_LITERAL,
    ManageSieveSession,
    SieveError,
    literal,
    parse_capabilities,
    quote,
)

from .helpers import tcp_server

GREETING = (b'"IMPLEMENTATION" "Test"\r\n"SIEVE" "fileinto vacation"\r\n"SASL" ""\r\n'
            b'"STARTTLS"\r\n"VERSION" "1.0"\r\nOK "ready"\r\n')


def _session(port: int, seconds: float = 2.0) -> ManageSieveSession:
    return ManageSieveSession("mail.example.test", "127.0.0.1", port,
                              time.monotonic() + seconds, timeout=seconds)


def _open_against(behaviour: Callable[[socket.socket], None], seconds: float = 2.0,
                  seen: list[ManageSieveSession] | None = None) -> ProbeError:
    with tcp_server(behaviour) as port:
        session = _session(port, seconds)
        try:
            with pytest.raises(ProbeError) as err:
                session.open()
        finally:
            session.close()
    if seen is not None:
        seen.append(session)
    return err.value


def _send(data: bytes) -> Callable[[socket.socket], None]:
    def behaviour(conn: socket.socket) -> None:
        conn.sendall(data)
        conn.settimeout(3)
        with contextlib.suppress(OSError):
            conn.recv(100)

    return behaviour


def test_capabilities_parse_strings_and_literals() -> None:
    def behaviour(conn: socket.socket) -> None:
        conn.sendall(b'"IMPLEMENTATION" {4}\r\nTest\r\n"SIEVE" "fileinto"\r\n'
                     b'"STARTTLS"\r\nOK (SASL "x)y") "hi"\r\n')
        conn.recv(100)
        conn.sendall(b'NO "no TLS today"\r\n')

    seen: list[ManageSieveSession] = []
    err = _open_against(behaviour, seen=seen)
    assert isinstance(err, SieveError) and err.kind == "no-starttls"
    assert seen[0].capabilities_before_tls == {"IMPLEMENTATION": "Test", "SIEVE": "fileinto",
                                               "STARTTLS": ""}
    assert "S: NO no TLS today" in seen[0].transcript


def test_a_server_that_never_answers_times_out_within_the_deadline() -> None:
    def silent(conn: socket.socket) -> None:
        conn.settimeout(5)
        with contextlib.suppress(OSError):
            conn.recv(100)

    err = _open_against(silent, seconds=0.5)
    assert isinstance(err, ProbeTimeout)


def test_a_huge_literal_is_refused_before_it_is_read() -> None:
    err = _open_against(_send(b'"IMPLEMENTATION" {%d}\r\nxx' % (MAX_LITERAL + 1)))
    assert err.kind == "protocol" and "literal" in err.reason


def test_a_huge_literal_announced_with_plus_is_refused_too() -> None:
    err = _open_against(_send(b'"SIEVE" {999999999999+}\r\n'))
    assert err.kind == "protocol"


@pytest.mark.parametrize("line", [
    b'"SIEVE" "fileinto" "vacation"\r\n',  # three strings
    b'SIEVE "fileinto"\r\n',  # an atom where a string belongs
    b'"SIEVE" "fileinto\r\n',  # unterminated quoted string
    b'"SIEVE" "file\\into"\r\n',  # an escape RFC 5804 does not have
    b'"SIEVE" {3}x\r\n',  # a literal that is not at the end of its line
])
def test_a_malformed_capability_line_is_a_protocol_error(line: bytes) -> None:
    err = _open_against(_send(line + b'"STARTTLS"\r\nOK\r\n'))
    assert err.kind == "protocol", err.reason


def test_a_line_without_end_is_cut() -> None:
    err = _open_against(_send(b'"IMPLEMENTATION" "' + b"x" * 20000))
    assert err.kind == "protocol" and "longer than" in err.reason


def test_endless_capability_lines_are_cut() -> None:
    err = _open_against(_send(b'"X" "y"\r\n' * 2000))
    assert err.kind == "protocol" and "longer than" in err.reason


def test_bye_at_the_greeting() -> None:
    err = _open_against(_send(b'BYE "too busy"\r\n'))
    assert err.kind == "protocol" and "too busy" in err.reason


def test_a_closed_connection_is_a_protocol_error() -> None:
    err = _open_against(_send(b'"SIEVE" "fileinto"\r\n'))
    assert err.kind in ("protocol", "timeout")


def test_data_injected_after_the_starttls_reply_is_refused() -> None:
    def behaviour(conn: socket.socket) -> None:
        conn.sendall(GREETING)
        conn.recv(100)
        conn.sendall(b'OK "go"\r\nOK "injected before TLS"\r\n')
        time.sleep(1)

    err = _open_against(behaviour)
    assert err.kind == "protocol" and "before TLS" in err.reason


def test_a_password_is_never_sent_without_tls() -> None:
    session = ManageSieveSession("mail.example.test", "127.0.0.1", 1, None)
    with pytest.raises(SieveError) as err:
        session.login("probe", "secret")
    assert err.value.kind == "tls"


def test_unreachable_port() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(SieveError) as err:
        _session(port).open()
    assert err.value.kind == "unreachable"


def test_quote_and_literal() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    with pytest.raises(ValueError):
        quote("two\r\nlines")
    assert literal("héllo") == b"{6+}\r\nh\xc3\xa9llo"


def test_parse_capabilities_names_are_case_insensitive() -> None:
    from watchtower.net.managesieve import _Str

    caps = parse_capabilities(((_Str("sieve"), _Str("fileinto")), (_Str("StartTLS"),)), "peer")
    assert caps == {"SIEVE": "fileinto", "STARTTLS": ""}
