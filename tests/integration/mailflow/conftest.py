"""The real mail stack (Postfix submission + smtps, Dovecot IMAPS, OpenDKIM signing) with its
DKIM key published in the session's PowerDNS, and a helper that sweeps it as a fleet would.

The stack and the zone are shared by the whole session; tests that break something (stop a
daemon, change a record, hold the queue) restore it before they return.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.servers.base import ServerError
from tests.servers.mailstack import MailStack
from tests.servers.powerdns import PowerDNS, txt
from watchtower.config import parse_fleet
from watchtower.model import Result
from watchtower.probe.sweep import run_sweep, select_checks

MAILFLOW_CHECKS = ["mail.submission", "mail.imap", "mail.roundtrip"]


def other_dkim_rdata() -> str:
    """A valid DKIM record for a key the stack does not sign with."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return txt("v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode())


@dataclass
class MailFlow:
    """The running stack, its DNS, and how to sweep it."""

    stack: MailStack
    dns: PowerDNS
    secret_path: Path

    @property
    def zone(self) -> str:
        return self.stack.domain

    def publish_dkim(self, rdata: str | None = None) -> None:
        self.dns.replace_rrset(self.zone, self.stack.dkim_record_name, "TXT", 60,
                               [rdata or self.stack.dkim_txt_rdata])

    def sweep(self, only: list[str] | None = None, *, ca_bundle: str | None = None,
              **host: Any) -> dict[str, Result]:
        """One sweep of the mail host with `host` overriding its [[mail_hosts]] keys."""
        entry: dict[str, Any] = {
            "name": "mail-host", "host": self.stack.hostname,
            "submission_port": self.stack.submission_port,
            "submissions_port": self.stack.smtps_port,
            "imaps_port": self.stack.imaps_port,
            "probe_user": self.stack.user,
            "probe_password": {"$file": str(self.secret_path)},
            "roundtrip_deadline": 15.0,
        }
        entry.update(host)
        fleet = parse_fleet({
            "probe": {"nameservers": [f"127.0.0.1:{self.dns.dns_port}"], "authoritative_port": self.dns.dns_port, "dns_timeout": 2.0, "http_timeout": 5.0, "ca_bundle": ca_bundle or str(self.stack.ca_pem_path)},
            "mail_hosts": [entry],
        })
        outcome = run_sweep(fleet, None, select_checks(only or MAILFLOW_CHECKS))
        return {r.check: r for r in outcome.results}


@pytest.fixture(scope="session")
def mailflow(mail_stack: MailStack, powerdns: PowerDNS,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailFlow]:
    zone = mail_stack.domain
    records = [
        ("mail", "A", 60, "127.0.0.1"),
        ("@", "MX", 60, f"10 {mail_stack.hostname}."),
        ("@", "TXT", 60, txt("v=spf1 mx -all")),
        ("_dmarc", "TXT", 60, txt("v=DMARC1; p=reject")),
        (f"{mail_stack.dkim_selector}._domainkey", "TXT", 60, mail_stack.dkim_txt_rdata),
    ]
    try:
        powerdns.create_zone(zone, [f"ns1.{zone}."], records)
    except ServerError as exc:  # another suite made it first: add what we need
        if "409" not in str(exc):
            raise
        for name, rtype, ttl, content in records:
            powerdns.replace_rrset(zone, name, rtype, ttl, [content])
    secret = tmp_path_factory.mktemp("mailflow") / "probe-password"
    secret.write_text(mail_stack.password + "\n")
    secret.chmod(0o600)
    mail_stack.clear_inbox()
    yield MailFlow(mail_stack, powerdns, secret)
