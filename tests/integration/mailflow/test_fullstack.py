"""The stack the project specifies in full, for real: Postfix + Rspamd (spam filter, DKIM
signer, ARC sealer at a forwarding hop, controller) + Dovecot with Pigeonhole (Sieve at
delivery, ManageSieve), probed by every mail-host check, healthy and with each fault made
for real on the shared stack (and undone afterwards)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.servers.base import free_port
from tests.unit.net.helpers import tcp_server
from watchtower.net.managesieve import ManageSieveSession

from .conftest import FULL_CHECKS, MailFlow, other_dkim_rdata


def test_healthy_full_stack_passes_every_mail_host_check(fullflow: MailFlow) -> None:
    results = fullflow.sweep(FULL_CHECKS)
    for check in FULL_CHECKS:
        assert str(results[check].status) == "ok", (check, results[check].summary)
    spam = results["mail.spam-filter"]
    assert "554 5.7.1 Gtube pattern" in spam.summary
    assert spam.evidence["to"] == fullflow.stack.address
    ctl = spam.evidence["controller"]
    assert ctl["stat"]["scanned"] >= 1 and ctl["stat"]["actions"]["reject"] >= 1
    sieve = results["mail.sieve"].evidence
    assert sieve["capabilities_before_tls"]["SASL"] == ""  # nothing to log in with before TLS
    assert sieve["delivery"]["fetch"]["folder"] == "watchtower-sieve"
    assert sieve["delivery"]["restore"] == {"active_before": None, "active_after": None,
                                            "restored": True}
    keys = results["mail.dkim.key-match"].evidence["keys"]
    assert keys[0]["host_key"]["fingerprint"] == keys[0]["published"]["fingerprint"]
    assert str(fullflow.stack.dkim_private_key_path) in keys[0]["path"]
    shown = repr([r.evidence for r in results.values()])
    # No secret and no key material in any evidence: only fingerprints.
    assert fullflow.stack.password not in shown
    assert fullflow.stack.rspamd is not None
    assert fullflow.stack.rspamd.controller_password not in shown
    public = fullflow.stack.dkim_txt_record.split("p=", 1)[1]
    assert public[:40] not in shown


def test_plain_imap_on_a_remote_looking_stack_refuses_login_before_tls(fullflow: MailFlow
                                                                        ) -> None:
    imap = fullflow.sweep(["mail.imap"], imap_port=fullflow.stack.imap_port)["mail.imap"]
    assert str(imap.status) == "ok", imap.summary
    assert "LOGINDISABLED" in imap.evidence["ports"][1]["capabilities_before_tls"]


# -- ARC ------------------------------------------------------------------------------------


def test_round_trip_through_the_sealing_forwarder_verifies_the_arc_chain(fullflow: MailFlow
                                                                         ) -> None:
    rt = fullflow.sweep(["mail.roundtrip"], roundtrip_to=fullflow.stack.forward_address,
                        expect_arc=True)["mail.roundtrip"]
    assert str(rt.status) == "ok", rt.summary
    assert "ARC cv=pass (i=1 d=fullstack.test s=s1)" in rt.summary
    hop = rt.evidence["arc"]["hops"][0]
    assert hop["seal_valid"] and hop["signature_valid"] and hop["cv"] == "none"


def test_a_declared_sealing_hop_that_does_not_seal_fails(fullflow: MailFlow) -> None:
    rt = fullflow.sweep(["mail.roundtrip"], expect_arc=True)["mail.roundtrip"]
    assert str(rt.status) == "fail", rt.summary
    assert "without an ARC seal" in rt.summary


@pytest.fixture
def tampered_seal(fullflow: MailFlow) -> Iterator[None]:
    """After the forwarder sealed, the last hop rewrites the sealed ARC-Authentication-Results
    (as a careless hop does): the seal no longer verifies, the DKIM signature still does."""
    rules = fullflow.stack.postfix_config_dir / "tamper_arc"
    rules.write_text("/^ARC-Authentication-Results: (i=1;.*)$/ "
                     "REPLACE ARC-Authentication-Results: ${1} tampered\n")
    with fullflow.stack.postconf_for_a_while(lmtp_header_checks=f"regexp:{rules}"):
        yield


def test_a_broken_seal_fails_and_names_the_hop(fullflow: MailFlow, tampered_seal: None) -> None:
    rt = fullflow.sweep(["mail.roundtrip"], roundtrip_to=fullflow.stack.forward_address,
                        expect_arc=True)["mail.roundtrip"]
    assert str(rt.status) == "fail", rt.summary
    assert "ARC chain invalid (cv=fail" in rt.summary
    assert "at i=1 d=fullstack.test s=s1" in rt.summary
    assert rt.evidence["dkim"][0]["pass"]  # only the seal broke
    assert rt.evidence["arc"]["hops"][0]["seal_valid"] is False


# -- spam filter ----------------------------------------------------------------------------


def test_declared_junk_but_the_filter_rejects_is_a_warning(fullflow: MailFlow) -> None:
    spam = fullflow.sweep(["mail.spam-filter"], spam_filter="junk")["mail.spam-filter"]
    assert str(spam.status) == "warn", spam.summary
    assert "not junked as declared" in spam.summary


def test_gtube_goes_to_the_probe_mailbox_even_when_the_round_trip_goes_elsewhere(
        fullflow: MailFlow) -> None:
    spam = fullflow.sweep(["mail.spam-filter"],
                          roundtrip_to=fullflow.stack.forward_address)["mail.spam-filter"]
    assert spam.evidence["to"] == fullflow.stack.address
    assert any(f"RCPT TO:<{fullflow.stack.address}>" in line
               for line in spam.evidence["submission"]["transcript"])
    assert not any(fullflow.stack.forward_address in line
                   for line in spam.evidence["submission"]["transcript"])


@pytest.fixture
def no_filter(fullflow: MailFlow) -> Iterator[None]:
    with fullflow.stack.postconf_for_a_while(smtpd_milters=""):
        yield


def test_gtube_arriving_as_ordinary_mail_fails(fullflow: MailFlow, no_filter: None) -> None:
    spam = fullflow.sweep(["mail.spam-filter"])["mail.spam-filter"]
    assert str(spam.status) == "fail", spam.summary
    assert "delivered into INBOX as ordinary mail" in spam.summary
    # ...and it was removed again: the probe mailbox holds no GTUBE message.
    assert not any(b"GTUBE" in m for m in fullflow.stack.fetch_all(expect=0, timeout=0))


def test_rspamd_down_the_controller_does_not_answer_and_mail_is_deferred(fullflow: MailFlow
                                                                         ) -> None:
    assert fullflow.stack.rspamd is not None
    fullflow.stack.rspamd.stop()
    try:
        spam = fullflow.sweep(["mail.spam-filter"])["mail.spam-filter"]
    finally:
        fullflow.stack.rspamd.start()
    assert str(spam.status) == "fail", spam.summary
    assert "Rspamd controller" in spam.summary and "not reachable" in spam.summary
    # milter_default_action = tempfail: Postfix defers from the first command after EHLO, so
    # the filter itself could not be put to the test (mail.roundtrip fails on the 454).
    assert any(str(f.status) == "error" and "4.3.0" in f.message for f in spam.findings)


def test_wrong_controller_password_fails_without_showing_it(fullflow: MailFlow, tmp_path
                                                             ) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    spam = fullflow.sweep(["mail.spam-filter"],
                          rspamd_password={"$file": str(wrong)})["mail.spam-filter"]
    assert str(spam.status) == "fail", spam.summary
    assert "refused the configured password (HTTP 403)" in spam.summary or \
        "refused the configured password (HTTP 401)" in spam.summary
    assert "not-the-password" not in repr(spam.evidence)


# -- Sieve ----------------------------------------------------------------------------------


def _sieve_session(fullflow: MailFlow) -> ManageSieveSession:
    stack = fullflow.stack
    assert stack.sieve_port is not None
    session = ManageSieveSession(stack.hostname, stack.host, stack.sieve_port,
                                 time.monotonic() + 10, ca_bundle=str(stack.ca_pem_path))
    session.open()
    session.login(stack.user, stack.password)
    return session


@pytest.fixture
def users_own_script(fullflow: MailFlow) -> Iterator[str]:
    with _sieve_session(fullflow) as session:
        session.put_script("mine", 'require ["fileinto"];\nkeep;\n')
        session.set_active("mine")
    yield "mine"
    with _sieve_session(fullflow) as session:
        session.set_active("")
        session.delete_script("mine")


def test_the_previous_active_script_is_restored(fullflow: MailFlow, users_own_script: str
                                                ) -> None:
    sieve = fullflow.sweep(["mail.sieve"])["mail.sieve"]
    assert str(sieve.status) == "ok", sieve.summary
    assert "previous active script 'mine' restored" in sieve.summary
    with _sieve_session(fullflow) as session:
        assert session.list_scripts() == [("mine", True)]


def test_a_missing_required_extension_fails(fullflow: MailFlow) -> None:
    sieve = fullflow.sweep(["mail.sieve"],
                           sieve_extensions=["fileinto", "x-no-such-ext"])["mail.sieve"]
    assert str(sieve.status) == "fail", sieve.summary
    assert "lacks x-no-such-ext" in sieve.summary


@pytest.fixture
def sieve_not_run(fullflow: MailFlow) -> Iterator[None]:
    fullflow.stack.set_sieve_at_delivery(False)
    yield
    fullflow.stack.set_sieve_at_delivery(True)


def test_sieve_not_run_at_delivery_fails(fullflow: MailFlow, sieve_not_run: None) -> None:
    sieve = fullflow.sweep(["mail.sieve"])["mail.sieve"]
    assert str(sieve.status) == "fail", sieve.summary
    assert "Sieve did not run at delivery" in sieve.summary
    assert sieve.evidence["delivery"]["restore"]["restored"]


def test_sasl_offered_before_starttls_fails(fullflow: MailFlow) -> None:
    # Dovecot trusts a client on its own address (127.0.0.1 to 127.0.0.1): it offers PLAIN
    # before STARTTLS there. The check reads the capabilities and never sends a password.
    stack = fullflow.stack
    fullflow.dns.replace_rrset(stack.domain, f"local.{stack.domain}.", "A", 60, ["127.0.0.1"])
    sieve = fullflow.sweep(["mail.sieve"], host=f"local.{stack.domain}",
                           sieve_port=stack.sieve_loopback_port)["mail.sieve"]
    assert str(sieve.status) == "fail", sieve.summary
    assert "offers SASL PLAIN LOGIN before STARTTLS" in sieve.summary
    assert not any("AUTHENTICATE" in line for line in sieve.evidence["transcript"])


def _silent(conn: socket.socket) -> None:
    conn.settimeout(10)
    with contextlib.suppress(OSError):
        conn.recv(100)


def _says(data: bytes) -> Callable[[socket.socket], None]:
    def behaviour(conn: socket.socket) -> None:
        conn.sendall(data)
        _silent(conn)

    return behaviour


@pytest.mark.parametrize(("behaviour", "reason"), [
    (_silent, "no greeting response within the deadline"),
    (_says(b'"IMPLEMENTATION" {4000000000}\r\n'), "literal of 4000000000 bytes refused"),
    (_says(b'"SIEVE" "fileinto" "vacation" "more"\r\n"STARTTLS"\r\nOK\r\n'),
     "malformed capability line"),
    (_says(b"* OK this is IMAP, not ManageSieve\r\n"), "unexpected"),
])
def test_a_hostile_managesieve_server_is_an_error_within_the_timeout(
        fullflow: MailFlow, behaviour: Callable[[socket.socket], None], reason: str) -> None:
    stack = fullflow.stack
    fullflow.dns.replace_rrset(stack.domain, f"hostile.{stack.domain}.", "A", 60,
                               ["127.0.0.1"])
    with tcp_server(behaviour) as port:
        results = fullflow.sweep(["mail.sieve"], host=f"hostile.{stack.domain}",
                                 sieve_port=port, probe={"sieve_timeout": 1.0},
                                 checks={"mail.sieve": {"timeout": 20}})
    sieve = results["mail.sieve"]
    assert str(sieve.status) == "error", sieve.summary
    assert reason in sieve.summary  # our client's reason, not the runner's watchdog


def test_managesieve_not_reachable_fails(fullflow: MailFlow) -> None:
    sieve = fullflow.sweep(["mail.sieve"], sieve_port=free_port(fullflow.stack.host))
    assert str(sieve["mail.sieve"].status) == "fail"
    assert "not reachable" in sieve["mail.sieve"].summary


# -- DKIM key match -------------------------------------------------------------------------


@pytest.fixture
def rotated_dns(fullflow: MailFlow) -> Iterator[str]:
    rdata = other_dkim_rdata()
    fullflow.publish_dkim(rdata)
    yield rdata
    fullflow.publish_dkim()


def test_published_key_that_is_not_the_signing_key_fails_with_both_fingerprints(
        fullflow: MailFlow, rotated_dns: str) -> None:
    km = fullflow.sweep(["mail.dkim.key-match"])["mail.dkim.key-match"]
    assert str(km.status) == "fail", km.summary
    key = km.evidence["keys"][0]
    assert key["host_key"]["fingerprint"] in km.summary
    assert key["published"]["fingerprint"] in km.summary
    assert key["host_key"]["fingerprint"] != key["published"]["fingerprint"]


def test_a_missing_key_file_is_an_error(fullflow: MailFlow) -> None:
    km = fullflow.sweep(["mail.dkim.key-match"], dkim_keys=[
        {"domain": fullflow.stack.domain, "selector": "s1",
         "path": "/nonexistent/s1.key"}])["mail.dkim.key-match"]
    assert str(km.status) == "error", km.summary
    assert "/nonexistent/s1.key" in km.summary


def test_a_command_that_prints_the_private_key_is_refused(fullflow: MailFlow) -> None:
    km = fullflow.sweep(["mail.dkim.key-match"],
                        dkim_pubkey_command=["cat", "--"])["mail.dkim.key-match"]
    assert str(km.status) == "error", km.summary
    assert "printed a private key" in km.summary
    key_text = fullflow.stack.dkim_private_key_path.read_text()
    body = key_text.splitlines()[1]
    assert body not in repr(km.evidence)


def test_keys_are_read_over_ssh_too(fullflow: MailFlow, sshd: Any) -> None:
    over_ssh = {"ssh": f"{sshd.user}@127.0.0.1:{sshd.port}",
                "ssh_key": {"$file": str(sshd.client_key)}, "known_hosts": str(sshd.known_hosts)}
    km = fullflow.sweep(["mail.dkim.key-match"], box=over_ssh)["mail.dkim.key-match"]
    assert str(km.status) == "ok", km.summary
    assert km.evidence["where"] == f"{sshd.user}@127.0.0.1:{sshd.port}"


def test_a_host_that_cannot_be_reached_is_an_error(fullflow: MailFlow, sshd: Any) -> None:
    nowhere = {"ssh": f"{sshd.user}@127.0.0.1:{free_port()}",
               "ssh_key": {"$file": str(sshd.client_key)}, "known_hosts": str(sshd.known_hosts)}
    km = fullflow.sweep(["mail.dkim.key-match"], box=nowhere)["mail.dkim.key-match"]
    assert str(km.status) == "error", km.summary
    assert "connection refused" in km.summary

