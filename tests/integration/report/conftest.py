"""A real SMTP relay (aiosmtpd: STARTTLS under a private CA, AUTH required) and a lab store.

The store is seeded by real sweeps of the session's lab (tests/conftest.py `lab`), with the lab's
domains assigned to two customers, so reports are built from what real probes found.
"""

from __future__ import annotations

import ssl
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.servers.base import free_port, require_module

SMTP_USER, SMTP_PASSWORD = "reports", "report-secret-77"
CUSTOMERS = {"alpha.test": "acme", "bravo.test": "acme", "charlie.test": "globex"}


@dataclass
class Relay:
    port: int
    ca_path: str
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    fail_next: int = 0  # answer DATA with 451 this many times (a relay in trouble)


class _Handler:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.relay.fail_next > 0:
            self.relay.fail_next -= 1
            return "451 4.3.0 try again later"
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.relay.messages.append(msg)  # type: ignore[arg-type]
        self.relay.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    from aiosmtpd.smtp import AuthResult

    ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="session")
def report_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    require_module("aiosmtpd", "trustme", why="report delivery tests")
    import trustme
    from aiosmtpd.controller import Controller

    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    ca_path = tmp_path_factory.mktemp("report-smtp") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    relay = Relay(port=free_port(), ca_path=str(ca_path))
    controller = Controller(_Handler(relay), hostname="127.0.0.1", port=relay.port,
                            tls_context=ctx, require_starttls=True,
                            authenticator=_authenticator, auth_require_tls=True)
    controller.start()
    try:
        yield relay
    finally:
        controller.stop()


def customer_fleet_file(lab_fleet_path: Path, relay: Relay, dest: Path,
                        database: str) -> Path:
    """The lab's fleet file with customers, a mail channel and two [[reports]] entries."""
    doc: dict[str, Any] = tomllib.loads(lab_fleet_path.read_text())
    doc["store"]["database"] = database

    def owner(name: str) -> str | None:
        host = name.lower()
        return next((c for d, c in CUSTOMERS.items() if host == d or host.endswith("." + d)),
                    None)

    for section, key in (("zones", "name"), ("mail_domains", "name")):
        for entry in doc.get(section, []):
            entry["customer"] = owner(entry[key])
    for entry in doc.get("services", []):
        entry["customer"] = owner(entry["name"])
    doc["notifications"] = {"retry_initial": 30, "retry_max": 600, "email": [{
        "name": "reports-mail", "host": "127.0.0.1", "port": relay.port,
        "security": "starttls", "username": SMTP_USER,
        "password": {"$env": "WT_REPORT_SMTP_PASSWORD"}, "sender": "reports@provider.example",
        "to": ["ops@provider.example"], "ca_bundle": relay.ca_path}]}
    doc["reports"] = [
        {"name": "acme-monthly", "cron": "0 6 1 * *", "customer": "acme",
         "recipients": ["it@acme.example", "audit@acme.example"], "channel": "reports-mail",
         "period_days": 30},
        {"name": "globex-weekly", "cron": "0 6 * * 1", "customer": "globex",
         "recipients": ["admin@globex.example"], "channel": "reports-mail", "period_days": 7,
         "formats": ["html", "text", "json"]},
    ]
    dest.write_text(tomli_w.dumps(doc))
    return dest


@dataclass
class Seeded:
    fleet: Any
    store: Any
    fleet_path: Path
    sweeps: int


@pytest.fixture(scope="session")
def seeded(lab, report_relay: Relay, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Seeded]:  # type: ignore[no-untyped-def]
    """Two real sweeps of the lab stored, under a fleet file with customers."""
    import os

    from watchtower.config import load_fleet
    from watchtower.probe import registry
    from watchtower.probe.sweep import run_sweep, select_checks
    from watchtower.store import Store

    os.environ["WT_REPORT_SMTP_PASSWORD"] = SMTP_PASSWORD
    work = tmp_path_factory.mktemp("report")
    path = customer_fleet_file(Path(lab.fleet_path), report_relay, work / "fleet.toml",
                               f"sqlite:///{work / 'report.db'}")
    fleet = load_fleet(path, registry.check_ids_and_families())
    store = Store(f"sqlite:///{work / 'report.db'}")
    checks = select_checks()
    for _ in range(2):
        run_sweep(fleet, store, checks)
    try:
        yield Seeded(fleet, store, path, 2)
    finally:
        store.close()
