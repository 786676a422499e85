"""The lab mail host's newer faces: its Sieve subset, its ManageSieve server (driven through
watchtower's own ManageSieve client), the GTUBE filter and the folders IMAP serves."""

from __future__ import annotations

import socket
import ssl
import time
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import BinaryIO

import pytest
from watchtower.checks.mail.sieve import probe_script
from watchtower.checks.mail.spamfilter import gtube_message

from watchtower.lab.mailhost import LabMailHost
from watchtower.lab.sieve import ScriptStore, SieveSyntaxError, folder_for, parse
from watchtower.net.imap import ImapError, ImapSession
from watchtower.net.managesieve import ManageSieveSession, SieveError
from watchtower.net.submission import SubmissionRefused, SubmissionSession

from .conftest import PASSWORD, USER


def _headers(text: str) -> Message:
    return BytesHeaderParser().parsebytes(text.encode())


# -- the Sieve subset -----------------------------------------------------------------------


def test_the_probe_script_files_only_marked_mail() -> None:
    rules = parse(probe_script("watchtower-sieve"))
    assert folder_for(rules, _headers("X-Watchtower-Sieve: t\r\n\r\n")) == "watchtower-sieve"
    assert folder_for(rules, _headers("Subject: hi\r\n\r\n")) == "INBOX"


def test_header_tests_stop_discard_and_comments() -> None:
    rules = parse('# a comment\nrequire ["fileinto"];\n'
                  'if header :contains "Subject" "invoice" { fileinto "Bills"; stop; }\n'
                  'if header :is "X-Spam" "yes" { discard; }\nkeep;')
    assert folder_for(rules, _headers("Subject: Your INVOICE\r\n\r\n")) == "Bills"
    assert folder_for(rules, _headers("X-Spam: Yes\r\n\r\n")) is None
    assert folder_for(rules, _headers("Subject: hello\r\n\r\n")) == "INBOX"


@pytest.mark.parametrize(("script", "why"), [
    ('require ["x-no-such"];', "unknown Sieve capability"),
    ('fileinto "x";', "without require"),
    ('require "fileinto"; redirect "a@b.example";', "not in the lab's Sieve subset"),
    ('require "fileinto"; if anyof (true) { keep; }', "cannot parse"),
    ('require "fileinto"; if true { keep; }', "not in the lab's Sieve subset"),
    ('require "fileinto"; if exists "X" { keep; ', "expected '}'"),
    ('require "fileinto" ', "expected ';'"),
    ("@@@", "cannot parse"),
])
def test_scripts_the_lab_cannot_run_are_refused(script: str, why: str) -> None:
    with pytest.raises(SieveSyntaxError) as err:
        parse(script)
    assert why in str(err.value)


def test_the_script_store(tmp_path: Path) -> None:
    store = ScriptStore(tmp_path)
    store.put(USER, "a", "keep;")
    store.put(USER, "b", "keep;")
    assert store.set_active(USER, "b") and not store.set_active(USER, "c")
    assert store.scripts(USER) == [("a", False), ("b", True)]
    assert store.delete(USER, "b") == "script is active"
    assert store.active_rules(USER) is not None
    assert store.set_active(USER, "")
    assert store.active_rules(USER) is None and store.delete(USER, "b") is None
    assert not ScriptStore.valid_name("../escape")


# -- the lab mail host with ManageSieve -----------------------------------------------------


def _sieve(host: LabMailHost, ca: str, *, login: bool = False) -> ManageSieveSession:
    """A ManageSieve session, opened (and logged in with `login`)."""
    session = ManageSieveSession("mail.lab.test", "127.0.0.1", host.sieve_port,
                                 time.monotonic() + 10, ca_bundle=ca, timeout=5)
    session.open()
    if login:
        session.login(USER, PASSWORD)
    return session


def test_managesieve_offers_no_sasl_before_starttls(lab_mail: tuple[LabMailHost, str]) -> None:
    host, ca = lab_mail
    with _sieve(host, ca) as session:
        assert session.capabilities_before_tls is not None
        assert session.capabilities_before_tls["SASL"] == ""
        assert "STARTTLS" in session.capabilities_before_tls
        assert session.capabilities["SASL"] == "PLAIN" and "STARTTLS" not in session.capabilities
        assert session.tls_version is not None
        session.login(USER, PASSWORD)
        assert session.check_script(probe_script("x")).ok
        refused = session.check_script('require ["nope"]; keep;')
        assert refused.status == "NO" and "unknown Sieve capability" in refused.text
        session.put_script("p", probe_script("x"))
        session.set_active("p")
        assert session.list_scripts() == [("p", True)]
        session.set_active("")
        session.delete_script("p")
        assert session.list_scripts() == []


def _greeted(sock: socket.socket) -> BinaryIO:
    """A reader on a fresh ManageSieve connection, past the greeting's capabilities."""
    reader = sock.makefile("rb")
    while not reader.readline().startswith(b"OK"):
        pass
    return reader


def test_managesieve_refuses_a_login_before_tls(lab_mail: tuple[LabMailHost, str]) -> None:
    host, _ = lab_mail
    with socket.create_connection(("127.0.0.1", host.sieve_port), timeout=5) as sock:
        reader = _greeted(sock)
        sock.sendall(b'AUTHENTICATE "PLAIN" "AHByb2JlQGxhYi50ZXN0AGNvcnJlY3QgaG9yc2U="\r\n')
        assert reader.readline().startswith(b'NO "Plaintext authentication disallowed')


def test_managesieve_with_the_plaintext_fault(lab_mail: tuple[LabMailHost, str]) -> None:
    host, ca = lab_mail
    host.config.faults.add("sieve-plaintext-auth")
    try:
        with _sieve(host, ca) as session:
            assert session.capabilities_before_tls is not None
            assert session.capabilities_before_tls["SASL"] == "PLAIN"
    finally:
        host.config.faults.discard("sieve-plaintext-auth")


def test_managesieve_drops_a_client_announcing_a_huge_literal(lab_mail: tuple[LabMailHost, str]
                                                               ) -> None:
    host, ca = lab_mail
    with socket.create_connection(("127.0.0.1", host.sieve_port), timeout=5) as raw:
        reader = _greeted(raw)
        raw.sendall(b"STARTTLS\r\n")
        assert reader.readline().startswith(b"OK")
        tls = ssl.create_default_context(cafile=ca).wrap_socket(raw,
                                                                server_hostname="mail.lab.test")
        tls_reader = _greeted(tls)
        tls.sendall(b'CHECKSCRIPT {999999999+}\r\n')
        assert tls_reader.readline() == b""  # disconnected, nothing buffered


def test_the_probe_script_files_at_delivery_and_imap_serves_the_folder(
        lab_mail: tuple[LabMailHost, str]) -> None:
    host, ca = lab_mail
    with _sieve(host, ca, login=True) as session:
        session.put_script("p", probe_script("Probes"))
        session.set_active("p")
    try:
        with SubmissionSession("mail.lab.test", "127.0.0.1", host.submission_port, "starttls",
                               "t.local", None, ca_bundle=ca, timeout=5) as sub:
            sub.open()
            sub.login(USER, PASSWORD)
            sub.send(USER, [USER], b"X-Watchtower-Sieve: t\r\nSubject: s\r\n\r\nx\r\n")
        with ImapSession("mail.lab.test", "127.0.0.1", host.imaps_port, "implicit", None,
                         ca_bundle=ca, timeout=5) as imap:
            imap.open()
            imap.login(USER, PASSWORD)
            assert imap.select("Probes") == 1
            assert imap.ensure_mailbox("Probes") is False
            assert imap.ensure_mailbox("Other") is True
            with pytest.raises(ImapError) as err:
                imap.select("Nowhere")
            assert err.value.kind == "no-mailbox"
    finally:
        with _sieve(host, ca, login=True) as session:
            session.set_active("")
            session.delete_script("p")


def test_gtube_is_rejected_or_junked(lab_mail: tuple[LabMailHost, str]) -> None:
    host, ca = lab_mail
    message = gtube_message(USER, USER, USER, "wt-1-0")

    def send() -> None:
        with SubmissionSession("mail.lab.test", "127.0.0.1", host.submission_port,
                               "starttls", "t.local", None, ca_bundle=ca, timeout=5) as sub:
            sub.open()
            sub.login(USER, PASSWORD)
            sub.send(USER, [USER], message, probe_mailbox=USER)

    with pytest.raises(SubmissionRefused) as refused:
        send()
    assert refused.value.reply.code == 554 and refused.value.step == "end of data"
    host.config.faults.add("spam-junk")
    try:
        send()
    finally:
        host.config.faults.discard("spam-junk")
    junk = host.config.mailbox(USER, "Junk")
    assert any(msg["X-Spam"] == "Yes" for msg in junk)


def test_the_client_refuses_to_talk_to_a_plain_server_with_a_password() -> None:
    session = ManageSieveSession("mail.lab.test", "127.0.0.1", 1, None)
    with pytest.raises(SieveError):
        session.login(USER, PASSWORD)
