"""SMTP, certificate, open-relay and DANE checks against a real Postfix (the `mail_stack`
fixture: an MX listener with STARTTLS under a test CA and a listener configured as an open
relay), an aiosmtpd server without STARTTLS, and MTA-STS policies over HTTPS."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.servers.base import ServerError, free_port
from tests.servers.mailstack import MailStack
from watchtower.model import Result
from watchtower.probe.sweep import run_sweep, select_checks

from .conftest import NS, MailWorld, d

SMTP_CHECKS = ["mail.smtp.starttls", "mail.smtp.certificate", "mail.open-relay", "mail.dane"]
PF_DOMAIN = d("postfix")


def sweep(world: MailWorld, domains: list[dict[str, Any]], only: list[str],
          **settings: Any) -> dict[tuple[str, str], Result]:
    outcome = run_sweep(world.fleet(domains, **settings), None, select_checks(only))
    return {(r.check, r.target.name): r for r in outcome.results}


def _ensure_zone(world: MailWorld, name: str, records: list[tuple[str, str, int, str]]) -> None:
    try:
        world.dns.create_zone(name, NS, records)
    except ServerError as exc:
        if "409" not in str(exc):
            raise
        for rname, rtype, ttl, content in records:
            world.dns.replace_rrset(name, rname, rtype, ttl, [content])


@pytest.fixture(scope="module")
def postfix(mail_world: MailWorld, mail_stack: MailStack) -> MailStack:
    """A domain whose MX is the Postfix MX listener; TLSA for it at _PORT._tcp."""
    host = mail_stack.hostname
    _ensure_zone(mail_world, host, [("@", "A", 300, "127.0.0.1")])
    _ensure_zone(mail_world, PF_DOMAIN, [("@", "MX", 300, f"10 {host}."),
                                         ("@", "TXT", 300, '"v=spf1 mx -all"')])
    return mail_stack


def _tlsa_for(stack: MailStack) -> str:
    pem = (stack.root / "tls" / "cert.pem").read_bytes()  # type: ignore[operator]
    leaf = x509.load_pem_x509_certificate(pem)
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"3 1 1 {hashlib.sha256(spki).hexdigest()}"


def test_postfix_mx_offers_starttls_with_a_valid_certificate(
        mail_world: MailWorld, postfix: MailStack) -> None:
    results = sweep(mail_world, [{"name": PF_DOMAIN}], SMTP_CHECKS[:2],
                    smtp_port=postfix.mx_port, ca_bundle=str(postfix.ca_pem_path))
    starttls = results[("mail.smtp.starttls", PF_DOMAIN)]
    assert str(starttls.status) == "ok", starttls.summary
    assert "TLSv1.3" in starttls.summary or "TLSv1.2" in starttls.summary
    endpoint = starttls.evidence["endpoints"][0]
    assert endpoint["banner"].startswith("220 ")
    assert "STARTTLS" in endpoint["capabilities"]
    cert = results[("mail.smtp.certificate", PF_DOMAIN)]
    assert str(cert.status) == "ok", cert.summary
    assert postfix.hostname in cert.summary


def test_certificate_from_an_unknown_ca_fails_under_mta_sts(
        mail_world: MailWorld, postfix: MailStack) -> None:
    results = sweep(mail_world, [{"name": PF_DOMAIN}], ["mail.smtp.certificate"],
                    smtp_port=postfix.mx_port)  # the fleet's CA is not Postfix's test CA
    cert = results[("mail.smtp.certificate", PF_DOMAIN)]
    assert str(cert.status) == "fail"
    assert "MTA-STS requires a trusted chain" in cert.summary


def test_postfix_mx_is_not_an_open_relay(mail_world: MailWorld, postfix: MailStack) -> None:
    results = sweep(mail_world, [{"name": PF_DOMAIN}], ["mail.open-relay"],
                    smtp_port=postfix.mx_port, ca_bundle=str(postfix.ca_pem_path))
    relay = results[("mail.open-relay", PF_DOMAIN)]
    assert str(relay.status) == "ok", relay.summary
    ep = relay.evidence["endpoints"][0]
    assert 500 <= ep["rcpt_code"] < 600
    assert not any(line.upper().startswith("C: DATA") for line in ep["transcript"])


def test_postfix_open_relay_listener_is_caught(mail_world: MailWorld,
                                               postfix: MailStack) -> None:
    results = sweep(mail_world, [{"name": PF_DOMAIN}], ["mail.open-relay"],
                    smtp_port=postfix.open_relay_port, ca_bundle=str(postfix.ca_pem_path))
    relay = results[("mail.open-relay", PF_DOMAIN)]
    assert str(relay.status) == "fail", relay.summary
    assert "open relay" in relay.summary
    transcript = relay.evidence["endpoints"][0]["transcript"]
    assert any(line.startswith("C: RCPT TO:") for line in transcript)
    assert not any(line.upper().startswith("C: DATA") for line in transcript)


def test_dane_matches_the_served_certificate(mail_world: MailWorld, postfix: MailStack) -> None:
    host = postfix.hostname
    name = f"_{postfix.mx_port}._tcp"
    good = _tlsa_for(postfix)
    mail_world.dns.replace_rrset(host, name, "TLSA", 300, [good])
    settings = {"smtp_port": postfix.mx_port, "ca_bundle": str(postfix.ca_pem_path)}
    results = sweep(mail_world, [{"name": PF_DOMAIN, "dane": True}], ["mail.dane"], **settings)
    dane = results[("mail.dane", PF_DOMAIN)]
    messages = [f.message for f in dane.findings]
    # PowerDNS alone does not validate: the AD bit is missing, which DANE requires.
    assert str(dane.status) == "fail" and "not DNSSEC-validated" in dane.summary
    assert not any("matches the certificate" in m or "no TLSA record matches" in m
                   for m in messages), messages
    mail_world.dns.replace_rrset(host, name, "TLSA", 300, ["3 1 1 " + "00" * 32])
    results = sweep(mail_world, [{"name": PF_DOMAIN, "dane": True}], ["mail.dane"], **settings)
    assert "no TLSA record matches" in " ".join(
        f.message for f in results[("mail.dane", PF_DOMAIN)].findings)
    mail_world.dns.delete_rrset(host, name, "TLSA")
    results = sweep(mail_world, [{"name": PF_DOMAIN}], ["mail.dane"], **settings)
    assert str(results[("mail.dane", PF_DOMAIN)].status) == "warn"


@pytest.fixture(scope="module")
def plain_smtp() -> Iterator[int]:
    """aiosmtpd without STARTTLS: the MX that sends mail in clear text."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


def test_mx_without_starttls_fails(mail_world: MailWorld, plain_smtp: int) -> None:
    results = sweep(mail_world, [{"name": d("good")}], ["mail.smtp.starttls"],
                    smtp_port=plain_smtp)
    starttls = results[("mail.smtp.starttls", d("good"))]
    assert str(starttls.status) == "fail"
    assert "does not offer STARTTLS" in starttls.summary


def test_mx_that_listens_nowhere_is_an_error(mail_world: MailWorld) -> None:
    results = sweep(mail_world, [{"name": d("good")}], ["mail.smtp.starttls"],
                    smtp_port=free_port())
    assert str(results[("mail.smtp.starttls", d("good"))].status) == "error"


MTA_STS_CASES = [
    ("good", "ok", "mode enforce"),
    ("sts-redirect", "fail", "redirect"),
    ("sts-testing", "warn", "mode testing"),
    ("sts-uncovered", "fail", "not matched by the policy"),
    ("sts-html", "fail", "text/html"),
    ("nodmarc", "fail", "no MTA-STS record"),
]


def test_mta_sts_policies_over_https(mail_world: MailWorld) -> None:
    results = sweep(mail_world, [{"name": d(label)} for label, _, _ in MTA_STS_CASES],
                    ["mail.mta-sts"])
    seen = {label: (str(results[("mail.mta-sts", d(label))].status),
                    fragment in results[("mail.mta-sts", d(label))].summary)
            for label, _, fragment in MTA_STS_CASES}
    assert seen == {label: (status, True) for label, status, _ in MTA_STS_CASES}, {
        label: results[("mail.mta-sts", d(label))].summary for label, _, _ in MTA_STS_CASES}
