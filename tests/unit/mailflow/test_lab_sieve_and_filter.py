"""The lab mail host's newer faces: its Sieve subset, its ManageSieve server (driven through
watchtower's own ManageSieve client), the GTUBE filter and the folders IMAP serves."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from watchtower.checks.mail.sieve import probe_script
from watchtower.checks.mail.spamfilter import gtube_message

from watchtower.lab.ca import LabCA
from watchtower.lab.mailhost import LabMailHost, MailHostConfig
from watchtower.lab.sieve import ScriptStore, SieveSyntaxError, folder_for, parse
from watchtower.net.imap import ImapError, ImapSession
from watchtower.net.managesieve import ManageSieveSession, SieveError
from watchtower.net.submission import SubmissionRefused, SubmissionSession

USER = "probe@lab.test"
PASSWORD = "correct horse"


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


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabMailHost, str]]:
    d: Path = tmp_path_factory.mktemp("labsieve")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    ca = LabCA(d / "ca")
    issued = ca.issue(["mail.lab.test"])
    config = MailHostConfig("mail.lab.test", {"lab.test"}, {USER: PASSWORD}, d / "maildir",
                            pem, sieve=ScriptStore(d / "sieve"))
    with LabMailHost(config, str(issued.cert_path), str(issued.key_path)) as host:
        yield host, str(ca.cert_path)


def _sieve(host: LabMailHost, ca: str) -> ManageSieveSession:
    return ManageSieveSession("mail.lab.test", "127.0.0.1", host.sieve_port,
                              time.monotonic() + 10, ca_bundle=ca, timeout=5)


def test_managesieve_offers_no_sasl_before_starttls(lab: tuple[LabMailHost, str]) -> None:
    host, ca = lab
    with _sieve(host, ca) as session:
        session.open()
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


def test_managesieve_refuses_a_login_before_tls(lab: tuple[LabMailHost, str]) -> None:
    host, _ = lab
    with socket.create_connection(("127.0.0.1", host.sieve_port), timeout=5) as sock:
        reader = sock.makefile("rb")
        while not reader.readline().startswith(b"OK"):
            pass
        sock.sendall(b'AUTHENTICATE "PLAIN" "AHByb2JlQGxhYi50ZXN0AGNvcnJlY3QgaG9yc2U="\r\n')
        assert reader.readline().startswith(b'NO "Plaintext authentication disallowed')


def test_managesieve_with_the_plaintext_fault(lab: tuple[LabMailHost, str]) -> None:
    host, ca = lab
    host.config.faults.add("sieve-plaintext-auth")
    try:
        with _sieve(host, ca) as session:
            session.open()
            assert session.capabilities_before_tls is not None
            assert session.capabilities_before_tls["SASL"] == "PLAIN"
    finally:
        host.config.faults.discard("sieve-plaintext-auth")


def test_managesieve_drops_a_client_announcing_a_huge_literal(lab: tuple[LabMailHost, str]
                                                               ) -> None:
    host, ca = lab
    with socket.create_connection(("127.0.0.1", host.sieve_port), timeout=5) as raw:
        reader = raw.makefile("rb")
        while not reader.readline().startswith(b"OK"):
            pass
        raw.sendall(b"STARTTLS\r\n")
        assert reader.readline().startswith(b"OK")
        tls = ssl.create_default_context(cafile=ca).wrap_socket(raw,
                                                                server_hostname="mail.lab.test")
        tls_reader = tls.makefile("rb")
        while not tls_reader.readline().startswith(b"OK"):
            pass
        tls.sendall(b'CHECKSCRIPT {999999999+}\r\n')
        assert tls_reader.readline() == b""  # disconnected, nothing buffered


def test_the_probe_script_files_at_delivery_and_imap_serves_the_folder(
        lab: tuple[LabMailHost, str]) -> None:
    host, ca = lab
    with _sieve(host, ca) as session:
        session.open()
        session.login(USER, PASSWORD)
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
        with _sieve(host, ca) as session:
            session.open()
            session.login(USER, PASSWORD)
            session.set_active("")
            session.delete_script("p")


def test_gtube_is_rejected_or_junked(lab: tuple[LabMailHost, str]) -> None:
    host, ca = lab
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
