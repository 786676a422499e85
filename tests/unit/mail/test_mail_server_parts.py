"""The pure parts of mail.spam-filter, mail.sieve and mail.dkim.key-match, and the settings
they read: GTUBE only ever to the probe mailbox, spam marks, the probe's Sieve script, key
fingerprints that never carry key material, ARC hops, and the [[mail_hosts]] validation."""

from __future__ import annotations

import base64
import socket
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from watchtower.checks.mail.keymatch import host_key_facts, published_key_facts
from watchtower.checks.mail.probemail import probe_mailbox
from watchtower.checks.mail.roundtrip import arc_hops, probe_message, verify_message
from watchtower.checks.mail.sieve import probe_script, sieve_string
from watchtower.checks.mail.spamfilter import GTUBE, gtube_message, spam_markers

from watchtower.config import MailHost, parse_fleet
from watchtower.errors import ConfigError, ProbeError
from watchtower.net.smtp_dialogue import SmtpConversation
from watchtower.net.submission import (
    RefusedTestContent,
    SubmissionSession,
    check_test_content,
)
from watchtower.parsers import dkim as dkim_parser

PROBE = "probe@example.test"


# -- GTUBE only to the probe mailbox ---------------------------------------------------------


@pytest.mark.parametrize("recipient", [
    "someone@example.test", "probe@example.net", "postmaster@example.test", "",
    "probe@example.test.attacker.example", "<probe@example.test>",
])
def test_gtube_message_refuses_anyone_but_the_probe_mailbox(recipient: str) -> None:
    with pytest.raises(RefusedTestContent):
        gtube_message(PROBE, recipient, PROBE, "wt-1-0")


def test_gtube_message_for_the_probe_mailbox() -> None:
    raw = gtube_message(PROBE, "Probe@Example.test", PROBE, "wt-1795639800-8426b9cef28001e8")
    assert GTUBE.encode() in raw and b"wt-1795639800-8426b9cef28001e8" in raw


@pytest.mark.parametrize(("recipients", "mailbox"), [
    (["someone@example.test"], PROBE),
    ([PROBE, "someone@example.test"], PROBE),  # an extra recipient smuggled in
    ([PROBE], None),  # nobody said what the probe mailbox is
    ([], PROBE),
])
def test_the_submission_session_refuses_test_content_elsewhere(recipients: list[str],
                                                                mailbox: str | None) -> None:
    message = probe_message(PROBE, PROBE, "wt-1-0") + GTUBE.encode()
    with pytest.raises(RefusedTestContent):
        check_test_content(message, recipients, mailbox)
    # ...and so does `send` itself, before a single command goes out.
    client, server = socket.socketpair()
    session = SubmissionSession("mail.example.test", "127.0.0.1", 587, "starttls", "h", None)
    session._conv = SmtpConversation(client, "peer", None, submission=True)
    with pytest.raises(RefusedTestContent):
        session.send(PROBE, recipients, message, probe_mailbox=mailbox)
    client.setblocking(False)
    server.setblocking(False)
    with pytest.raises(BlockingIOError):
        server.recv(10)  # nothing was sent
    client.close()
    server.close()


def test_other_gtube_variants_are_test_content_too() -> None:
    rspamd_add_header = b"YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
    with pytest.raises(RefusedTestContent):
        check_test_content(rspamd_add_header, ["x@example.test"], PROBE)
    check_test_content(b"an ordinary probe message", ["x@example.test"], PROBE)
    check_test_content(rspamd_add_header, [PROBE.upper()], PROBE)


def test_the_probe_mailbox_is_the_probe_user() -> None:
    assert probe_mailbox(MailHost(name="m", host="mail.example.test",
                                  probe_user="probe")) == "probe@mail.example.test"
    assert probe_mailbox(MailHost(name="m", host="mail.example.test",
                                  probe_user=PROBE)) == PROBE


# -- spam marks -----------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "expected"), [
    ("X-Spam: Yes\r\n", ["X-Spam: Yes"]),
    ("X-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=1000.0\r\n",
     ["X-Spam-Flag: YES", "X-Spam-Status: Yes, score=1000.0"]),
    ("X-Spam-Status: No, score=0.1\r\n", []),
    ("Subject: ***SPAM*** watchtower probe\r\n", ["Subject: ***SPAM***"]),
    ("", []),
])
def test_spam_markers(headers: str, expected: list[str]) -> None:
    raw = f"From: {PROBE}\r\n{headers}\r\nbody\r\n".encode()
    assert spam_markers(raw) == expected


# -- the probe's Sieve script ---------------------------------------------------------------


def test_probe_script_quotes_the_folder() -> None:
    assert sieve_string('a "b" \\c') == '"a \\"b\\" \\\\c"'
    script = probe_script('odd "folder"')
    assert 'fileinto "odd \\"folder\\"";' in script
    assert 'if exists "X-Watchtower-Sieve"' in script and 'require ["fileinto"];' in script


# -- key fingerprints -----------------------------------------------------------------------


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _record(p: bytes, k: str = "rsa") -> dkim_parser.DkimKey:
    return dkim_parser.parse(f"v=DKIM1; k={k}; p={base64.b64encode(p).decode()}")


def test_host_and_published_rsa_keys_have_the_same_fingerprint() -> None:
    key = _rsa()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    pkcs1 = key.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.PKCS1)
    host = host_key_facts(pem.decode())
    assert host["type"] == "rsa" and host["bits"] == 2048
    assert host["fingerprint"].startswith("sha256:") and len(host["fingerprint"]) == 71
    assert published_key_facts(_record(spki)) == host
    assert published_key_facts(_record(pkcs1)) == host  # some publish RSAPublicKey
    assert base64.b64encode(spki).decode()[:40] not in repr(host)
    other = _rsa().public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    assert published_key_facts(_record(other))["fingerprint"] != host["fingerprint"]


def test_ed25519_raw_published_key_matches_the_pem_on_the_host() -> None:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = key.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert published_key_facts(_record(raw, "ed25519")) == host_key_facts(pem)


def test_a_private_key_on_the_wire_is_refused_and_not_echoed() -> None:
    pem = _rsa().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()).decode()
    with pytest.raises(ProbeError) as err:
        host_key_facts(pem)
    assert err.value.kind == "config" and pem.splitlines()[1] not in err.value.reason


def test_garbage_from_the_key_command() -> None:
    with pytest.raises(ProbeError) as err:
        host_key_facts("Could not read key\n")
    assert err.value.kind == "malformed"


# -- ARC hops -------------------------------------------------------------------------------


class _Answer:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts


def test_arc_hops_are_named_and_a_broken_seal_is_pinned_to_its_hop() -> None:
    key = _rsa()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()

    class Ctx:
        def resolve(self, name: str, rdtype: str) -> Any:
            if name != "arc._domainkey.relay.example.net":
                raise ProbeError("NXDOMAIN", kind="dns")
            return _Answer([record])

    raw = (b"Authentication-Results: relay.example.net; dkim=none\r\n"
           + probe_message(PROBE, PROBE, "wt-1-0"))
    sealed = b"".join(dkim.arc_sign(raw, b"arc", b"relay.example.net", pem,
                                    b"relay.example.net")) + raw
    arc = verify_message(sealed, Ctx())["arc"]
    assert arc["cv"] == "pass"
    assert arc["hops"] == [{"i": 1, "d": "relay.example.net", "s": "arc", "cv": "none",
                            "seal_valid": True, "signature_valid": True}]
    assert arc_hops(arc) == "i=1 d=relay.example.net s=arc"
    broken = sealed.replace(b"It is deleted automatically", b"It is kept forever")
    arc = verify_message(broken, Ctx())["arc"]
    assert arc["cv"] == "fail" and arc["hops"][0]["signature_valid"] is False


# -- settings -------------------------------------------------------------------------------


def _problems(**mail_host: Any) -> list[str]:
    entry = {"name": "m", "host": "mail.example.test", **mail_host}
    try:
        parse_fleet({"mail_hosts": [entry]}, "fleet.toml", check_secrets=False)
    except ConfigError as exc:
        return exc.problems
    return []


@pytest.mark.parametrize(("entry", "expected"), [
    ({"runs_on": "nowhere"}, "mail_hosts[0].runs_on: no [[hosts]] entry named 'nowhere'"),
    ({"dkim_keys": [{"domain": "example.test", "selector": "s1", "path": "/k"}]},
     "mail_hosts[0].dkim_keys: set runs_on too"),
    ({"rspamd_password": {"$env": "X"}}, "mail_hosts[0].rspamd_password: set rspamd_controller"),
    ({"rspamd_controller": "ftp://x"}, "mail_hosts[0].rspamd_controller: not a https/http URL"),
    ({"rspamd_password": "inline"}, "mail_hosts[0].rspamd_password: secrets are never inline"),
    ({"spam_filter": "quarantine"}, "mail_hosts[0].spam_filter: Input should be 'reject' or"),
    ({"sieve_port": 0}, "mail_hosts[0].sieve_port: Input should be greater than 0"),
    ({"dkim_pubkey_command": []}, "mail_hosts[0].dkim_pubkey_command: List should have at"),
    ({"dkim_keys": [{"domain": "bad..name", "selector": "s1", "path": "/k"}]},
     "mail_hosts[0].dkim_keys[0].domain: not a domain name"),
])
def test_mail_host_settings_are_validated(entry: dict[str, Any], expected: str) -> None:
    found = _problems(**entry)
    assert any(expected in p for p in found), found


def test_the_controller_password_is_a_secret_of_the_fleet() -> None:
    fleet = parse_fleet({"mail_hosts": [{"name": "m", "host": "mail.example.test",
                                         "rspamd_controller": "http://127.0.0.1:11334",
                                         "rspamd_password": {"$env": "RSPAMD_PW"}}]},
                        check_secrets=False)
    assert ("mail_hosts[0].rspamd_password", fleet.mail_hosts[0].rspamd_password) in list(
        fleet.secrets())
