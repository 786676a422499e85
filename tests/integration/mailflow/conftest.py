"""The real mail stacks with their DKIM keys published in the session's PowerDNS, and a helper
that sweeps one as a fleet would.

`mailflow`: Postfix submission + smtps, Dovecot IMAPS, OpenDKIM signing. `fullflow`: the stack
the project specifies in full (Rspamd as spam filter, DKIM signer and ARC sealer with its
controller; Dovecot with Pigeonhole: Sieve at delivery, ManageSieve), on its own loopback
address. The stacks and zones are shared by the whole session; tests that break something
(stop a daemon, change a record, hold the queue) restore it before they return.
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
FULL_CHECKS = [*MAILFLOW_CHECKS, "mail.spam-filter", "mail.sieve", "mail.dkim.key-match"]
#: The [[hosts]] entry the full stack's mail host runs on (local transport: the test machine).
MAIL_BOX = "mail-box"


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
    controller_secret: Path | None = None

    @property
    def zone(self) -> str:
        return self.stack.domain

    def publish_dkim(self, rdata: str | None = None) -> None:
        self.dns.replace_rrset(self.zone, self.stack.dkim_record_name, "TXT", 60,
                               [rdata or self.stack.dkim_txt_rdata])

    def entry(self) -> dict[str, Any]:
        """The stack's [[mail_hosts]] entry, with what the full stack adds."""
        entry: dict[str, Any] = {
            "name": "mail-host", "host": self.stack.hostname,
            "submission_port": self.stack.submission_port,
            "submissions_port": self.stack.smtps_port,
            "imaps_port": self.stack.imaps_port,
            "probe_user": self.stack.user,
            "probe_password": {"$file": str(self.secret_path)},
            "roundtrip_deadline": 15.0,
        }
        if self.stack.sieve_port:
            entry.update(sieve_port=self.stack.sieve_port,
                         sieve_extensions=["fileinto", "vacation", "imap4flags"])
        if self.stack.rspamd is not None and self.controller_secret is not None:
            entry.update(rspamd_controller=self.stack.rspamd.controller_url,
                         rspamd_password={"$file": str(self.controller_secret)},
                         runs_on=MAIL_BOX,
                         dkim_keys=[{"domain": self.stack.dkim_domain,
                                     "selector": self.stack.dkim_selector,
                                     "path": str(self.stack.dkim_private_key_path)}])
        return entry

    def sweep(self, only: list[str] | None = None, *, ca_bundle: str | None = None,
              probe: dict[str, Any] | None = None, checks: dict[str, Any] | None = None,
              box: dict[str, Any] | None = None, **host: Any) -> dict[str, Result]:
        """One sweep of the mail host with `host` overriding its [[mail_hosts]] keys (and
        `probe`, `checks` added to those sections, `box` to its [[hosts]] entry)."""
        entry = self.entry()
        entry.update(host)
        fleet = parse_fleet({
            "probe": {
                "nameservers": [f"127.0.0.1:{self.dns.dns_port}"],
                "authoritative_port": self.dns.dns_port,
                "dns_timeout": 2.0,
                "http_timeout": 5.0,
                "smtp_timeout": 5.0,
                "imap_timeout": 5.0,
                "ca_bundle": ca_bundle or str(self.stack.ca_pem_path),
                **(probe or {}),
            },
            "checks": checks or {},
            "mail_hosts": [entry],
            "hosts": [{"name": MAIL_BOX, **(box or {})}] if "runs_on" in entry else [],
        })
        outcome = run_sweep(fleet, None, select_checks(only or MAILFLOW_CHECKS))
        return {r.check: r for r in outcome.results}


def _publish(stack: MailStack, powerdns: PowerDNS) -> None:
    zone = stack.domain
    records = [
        ("mail", "A", 60, stack.host),
        ("@", "MX", 60, f"10 {stack.hostname}."),
        ("@", "TXT", 60, txt("v=spf1 mx -all")),
        ("_dmarc", "TXT", 60, txt("v=DMARC1; p=reject")),
        (f"{stack.dkim_selector}._domainkey", "TXT", 60, stack.dkim_txt_rdata),
    ]
    try:
        powerdns.create_zone(zone, [f"ns1.{zone}."], records)
    except ServerError as exc:  # another suite made it first: add what we need
        if "409" not in str(exc):
            raise
        for name, rtype, ttl, content in records:
            powerdns.replace_rrset(zone, name, rtype, ttl, [content])


def _secret(tmp_path_factory: pytest.TempPathFactory, name: str, value: str) -> Path:
    path = tmp_path_factory.mktemp("mailflow") / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def mailflow(mail_stack: MailStack, powerdns: PowerDNS,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailFlow]:
    _publish(mail_stack, powerdns)
    mail_stack.clear_inbox()
    yield MailFlow(mail_stack, powerdns,
                   _secret(tmp_path_factory, "probe-password", mail_stack.password))


@pytest.fixture(scope="session")
def fullflow(full_mail_stack: MailStack, powerdns: PowerDNS,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailFlow]:
    stack = full_mail_stack
    assert stack.rspamd is not None
    _publish(stack, powerdns)
    stack.clear_inbox()
    yield MailFlow(stack, powerdns,
                   _secret(tmp_path_factory, "probe-password", stack.password),
                   _secret(tmp_path_factory, "rspamd-password", stack.rspamd.controller_password))
