"""The pure parts of the mail-flow checks and their network seams, without a mail server:
Authentication-Results parsing, probe tokens, AUTH capability parsing, DATA dot-stuffing and
credential redaction in the SMTP transcript, the IMAP STARTTLS callback, DKIM verification
through the sweep's resolver."""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from watchtower.checks.mail.probemail import STALE_SECONDS, new_token, token_age
from watchtower.checks.mail.roundtrip import parse_auth_results, probe_message, verify_message

from watchtower.errors import ProbeError
from watchtower.lab.imapd import tokens, uid_set
from watchtower.net.imap import ImapError, ImapStartTls
from watchtower.net.smtp_dialogue import Reply, SmtpConversation
from watchtower.net.submission import auth_mechanisms


def test_auth_results_are_parsed_with_comments_and_properties() -> None:
    header = ("mx.example.net; spf=pass (sender SPF authorized) smtp.mailfrom=example.test;\r\n"
              " dkim=pass header.d=example.test header.s=s1; dmarc=fail (p=reject) "
              "header.from=example.test; arc=none")
    parsed = parse_auth_results(header)
    assert parsed["authserv_id"] == "mx.example.net"
    got = {r["method"]: r["result"] for r in parsed["results"]}
    assert got == {"spf": "pass", "dkim": "pass", "dmarc": "fail", "arc": "none"}
    assert parsed["results"][1]["props"]["header.s"] == "s1"


def test_auth_results_with_none_and_a_version() -> None:
    parsed = parse_auth_results("mx.example.net 1; none")
    assert parsed == {"authserv_id": "mx.example.net", "results": []}


def test_tokens_carry_their_age_and_foreign_values_have_none() -> None:
    token = new_token(1_800_000_000)
    assert token_age(token, 1_800_000_000 + STALE_SECONDS + 1) == STALE_SECONDS + 1
    assert token_age("someone else's header", 0) is None
    assert new_token() != new_token()


def test_probe_message_carries_the_token_where_the_check_looks() -> None:
    raw = probe_message("probe@example.test", "probe@example.test", "wt-1-abc")
    assert b"X-Watchtower-Probe: wt-1-abc" in raw
    assert b"Message-ID: <wt-1-abc@example.test>" in raw


def test_auth_mechanisms_from_ehlo() -> None:
    ehlo = Reply(250, ("mail.example.test", "PIPELINING", "AUTH PLAIN LOGIN", "AUTH=LOGIN"))
    assert auth_mechanisms(ehlo) == ["PLAIN", "LOGIN"]
    assert auth_mechanisms(Reply(250, ("mail.example.test", "STARTTLS"))) == []
    assert auth_mechanisms(None) == []


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.settimeout(2)
    b.settimeout(2)
    return a, b


def test_message_body_is_dot_stuffed_and_terminated() -> None:
    client, server = _pair()
    conv = SmtpConversation(client, "peer", None, submission=True)
    server.sendall(b"250 2.0.0 Ok: queued\r\n")
    reply = conv.send_message(b"Subject: x\n\n.leading dot\nlast")
    sent = server.recv(4096)
    assert sent == b"Subject: x\r\n\r\n..leading dot\r\nlast\r\n.\r\n"
    assert reply.code == 250
    assert conv.transcript[0] == "C: <message, 35 bytes>"


def test_a_probe_conversation_never_sends_a_body() -> None:
    client, _server = _pair()
    conv = SmtpConversation(client, "peer", None)
    with pytest.raises(ValueError, match="never sends a message body"):
        conv.command("DATA")
    with pytest.raises(ValueError, match="never sends a message body"):
        conv.send_message(b"x")


def test_credentials_never_reach_the_transcript() -> None:
    client, server = _pair()
    conv = SmtpConversation(client, "peer", None, submission=True)
    server.sendall(b"235 2.7.0 ok\r\n")
    conv.command("AUTH PLAIN AHNlY3JldABzZWNyZXQ=", "AUTH", shown="AUTH PLAIN <withheld>")
    assert server.recv(100).startswith(b"AUTH PLAIN AHNl")
    assert conv.transcript == ["C: AUTH PLAIN <withheld>", "S: 235 2.7.0 ok"]


def _serve(sock: socket.socket, lines: list[bytes]) -> threading.Thread:
    def run() -> None:
        sock.sendall(lines[0])
        sock.recv(100)
        sock.sendall(lines[1])

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_imap_starttls_callback_accepts_ok() -> None:
    client, server = _pair()
    t = _serve(server, [b"* OK ready\r\n", b"wt1 OK Begin TLS negotiation now\r\n"])
    ImapStartTls(None)(client, 2)
    t.join()


def test_imap_starttls_callback_reports_refusal() -> None:
    client, server = _pair()
    t = _serve(server, [b"* OK ready\r\n", b"wt1 BAD no TLS here\r\n"])
    with pytest.raises(ImapError) as err:
        ImapStartTls(None)(client, 2)
    assert err.value.kind == "no-starttls"
    t.join()


class _Answer:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts


def _ctx(records: dict[str, str]) -> Any:
    def resolve(name: str, rdtype: str) -> _Answer:
        if name not in records:
            raise ProbeError("NXDOMAIN-ish", kind="dns")
        return _Answer([records[name]])

    return SimpleNamespace(resolve=resolve)


def _key() -> tuple[bytes, str]:
    import base64

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()


def test_dkim_verifies_through_the_sweep_resolver_and_reports_alignment() -> None:
    pem, record = _key()
    raw = probe_message("probe@example.test", "probe@example.test", "wt-1-abc")
    signed = dkim.sign(raw, b"s1", b"example.test", pem) + raw
    facts = verify_message(signed, _ctx({"s1._domainkey.example.test": record}))
    assert facts["dkim"][0]["pass"] and facts["dkim"][0]["aligned"]
    assert facts["arc"] == {"present": False}


def test_dkim_with_another_published_key_fails_with_a_reason() -> None:
    pem, _ = _key()
    _, other = _key()
    raw = probe_message("probe@example.test", "probe@example.test", "wt-1-abc")
    signed = dkim.sign(raw, b"s1", b"example.test", pem) + raw
    facts = verify_message(signed, _ctx({"s1._domainkey.example.test": other}))
    assert not facts["dkim"][0]["pass"]
    assert facts["dkim"][0]["reason"]


def test_dkim_key_not_published() -> None:
    pem, _ = _key()
    raw = probe_message("probe@example.test", "probe@example.test", "wt-1-abc")
    signed = dkim.sign(raw, b"s1", b"example.test", pem) + raw
    assert not verify_message(signed, _ctx({}))["dkim"][0]["pass"]


def test_signature_of_another_domain_is_not_aligned() -> None:
    pem, record = _key()
    raw = probe_message("probe@example.test", "probe@example.test", "wt-1-abc")
    signed = dkim.sign(raw, b"s1", b"relay.example.net", pem) + raw
    facts = verify_message(signed, _ctx({"s1._domainkey.relay.example.net": record}))
    assert facts["dkim"][0]["pass"] and not facts["dkim"][0]["aligned"]


def test_lab_imapd_command_parsing() -> None:
    assert tokens('LOGIN probe@example.test "pa ss\\"word"') == ["LOGIN", "probe@example.test",
                                                                  'pa ss"word']
    assert tokens("FETCH 3 (BODY.PEEK[])") == ["FETCH", "3", "(", "BODY.PEEK[]", ")"]
    assert uid_set("1:3,7", [1, 2, 3, 5, 7]) == [1, 2, 3, 7]
    assert uid_set("5:*", [1, 5, 9]) == [5, 9]
    assert uid_set("*", [1, 5, 9]) == [9]


def test_arc_chain_is_verified_and_a_broken_one_reported() -> None:
    pem, record = _key()
    raw = (b"Authentication-Results: relay.example.net; spf=pass smtp.mailfrom=example.test\r\n"
           + probe_message("probe@example.test", "probe@example.test", "wt-1-abc"))
    arc = b"".join(dkim.arc_sign(raw, b"s1", b"relay.example.net", pem, b"relay.example.net"))
    ctx = _ctx({"s1._domainkey.relay.example.net": record})
    sealed = arc + raw
    assert verify_message(sealed, ctx)["arc"]["cv"] == "pass"
    broken = sealed.replace(b"It is deleted automatically", b"It is kept forever")
    facts = verify_message(broken, ctx)
    assert facts["arc"]["present"] and facts["arc"]["cv"] == "fail"
