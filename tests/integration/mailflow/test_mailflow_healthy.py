"""mail.submission, mail.imap and mail.roundtrip against the healthy real stack."""

from __future__ import annotations

import time

from tests.servers.base import free_port

from .conftest import MailFlow


def test_healthy_stack_passes_all_three(mailflow: MailFlow) -> None:
    results = mailflow.sweep()
    sub, imap, rt = (results[c] for c in ("mail.submission", "mail.imap", "mail.roundtrip"))
    assert str(sub.status) == "ok", sub.summary
    assert "AUTH only after TLS" in sub.summary
    ports = {p["port"]: p for p in sub.evidence["ports"]}
    assert ports[mailflow.stack.submission_port]["auth_before_tls"] == []
    assert "PLAIN" in ports[mailflow.stack.submission_port]["auth_after_tls"]
    assert "PLAIN" in ports[mailflow.stack.smtps_port]["auth_after_tls"]
    assert not any("credentials" not in line and "AUTH PLAIN A" in line
                   for p in sub.evidence["ports"] for line in p["transcript"])
    assert str(imap.status) == "ok", imap.summary
    assert imap.evidence["ports"][0]["login_seconds"] < 5
    assert str(rt.status) == "ok", rt.summary
    ev = rt.evidence
    assert ev["dkim"][0]["pass"] and ev["dkim"][0]["d"] == mailflow.stack.domain
    assert ev["dkim"][0]["aligned"]
    assert 0 < ev["fetch"]["latency_seconds"] < 15
    assert ev["headers"]["DKIM-Signature"][0].count("b=…") == 1
    # The password never reaches the evidence, and the probe message is gone.
    assert mailflow.stack.password not in repr(results)
    assert not any(ev["token"].encode() in m for m in mailflow.stack.fetch_all(expect=0,
                                                                               timeout=0))


def test_missing_smtps_port_is_a_warning(mailflow: MailFlow) -> None:
    sub = mailflow.sweep(["mail.submission"], submissions_port=free_port())["mail.submission"]
    assert str(sub.status) == "warn", sub.summary
    assert "not reachable" in sub.summary


def test_no_submission_port_at_all_fails(mailflow: MailFlow) -> None:
    sub = mailflow.sweep(["mail.submission"], submission_port=free_port(),
                         submissions_port=free_port())["mail.submission"]
    assert str(sub.status) == "fail", sub.summary
    assert "no submission port reachable" in sub.summary


def test_stale_probe_messages_are_cleaned_and_never_answer(mailflow: MailFlow) -> None:
    old = f"wt-{int(time.time()) - 7200}-{'0' * 16}"
    fresh_other = f"wt-{int(time.time())}-{'f' * 16}"  # a concurrent probe's message
    for token in (old, fresh_other):
        mailflow.stack.submit(f"From: {mailflow.stack.address}\r\nTo: {mailflow.stack.address}"
                              f"\r\nX-Watchtower-Probe: {token}\r\nSubject: {token}\r\n\r\nx\r\n")
    mailflow.stack.fetch_all(expect=2)
    rt = mailflow.sweep(["mail.roundtrip"])["mail.roundtrip"]
    assert str(rt.status) == "ok", rt.summary
    assert rt.evidence["fetch"]["stale_deleted"] == 1
    left = mailflow.stack.fetch_all(expect=0, timeout=0)
    assert any(fresh_other.encode() in m for m in left)
    assert not any(old.encode() in m for m in left)
    mailflow.stack.clear_inbox()


def test_untrusted_certificate_withholds_credentials(mailflow: MailFlow, tmp_path) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    results = mailflow.sweep(ca_bundle=str(other))
    assert str(results["mail.submission"].status) == "fail"
    assert "not trusted" in results["mail.submission"].summary
    assert str(results["mail.imap"].status) == "fail", results["mail.imap"].summary
    rt = results["mail.roundtrip"]
    assert str(rt.status) == "fail" and "credentials withheld" in rt.summary
    assert not any("AUTH" in line for line in rt.evidence["submission"]["transcript"])


def test_round_trip_through_implicit_tls(mailflow: MailFlow) -> None:
    rt = mailflow.sweep(["mail.roundtrip"], roundtrip_via="submissions")["mail.roundtrip"]
    assert str(rt.status) == "ok", rt.summary
    assert f"{mailflow.stack.smtps_port} (implicit)" in rt.summary


def test_expected_authentication_results_missing_fails(mailflow: MailFlow) -> None:
    # This stack's local delivery adds no Authentication-Results; a host declared to add
    # them (expect_auth_results) is judged on them.
    rt = mailflow.sweep(["mail.roundtrip"], expect_auth_results=True)["mail.roundtrip"]
    assert str(rt.status) == "fail", rt.summary
    assert "no spf result" in rt.summary and "no dmarc result" in rt.summary


def test_key_match_reads_opendkims_key_file(mailflow: MailFlow) -> None:
    """mail.dkim.key-match against the key OpenDKIM signs with (opendkim-genkey's PKCS#1 PEM
    in OpenDKIM's key directory), as against Rspamd's in test_fullstack.py."""
    from .conftest import MAIL_BOX

    stack = mailflow.stack
    km = mailflow.sweep(["mail.dkim.key-match"], runs_on=MAIL_BOX, dkim_keys=[
        {"domain": stack.dkim_domain, "selector": stack.dkim_selector,
         "path": str(stack.dkim_private_key_path)}])["mail.dkim.key-match"]
    assert str(km.status) == "ok", km.summary
    key = km.evidence["keys"][0]
    assert key["path"].endswith(f"opendkim/{stack.dkim_selector}.private")
    assert key["host_key"]["fingerprint"] == key["published"]["fingerprint"]
    assert "PRIVATE KEY" not in repr(km.evidence)
