"""Notices delivered for real: SMTP with STARTTLS and AUTH (aiosmtpd) and apprise webhooks.

aiosmtpd (PyPI) runs in-process on loopback with a certificate from a private CA (trustme), so
watchtower's mailer verifies TLS for real; apprise posts to a plain HTTP server on loopback
(`json://`), which stands for any webhook/ntfy/Matrix target: the code path in watchtower is
the same for every apprise URL.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.servers.base import free_port, require_module
from tests.unit.alerts.helpers import T0, fleet, minutes, result, store
from watchtower.alerting.notify import OutboxWorker
from watchtower.alerting.processor import AlertProcessor

SMTP_USER, SMTP_PASSWORD = "alerts", "mail-secret-42"
WEBHOOK_TOKEN = "hook-token-9f8e7d"


@dataclass
class Mailbox:
    messages: list[Any] = field(default_factory=list)
    port: int = 0
    ca_path: str = ""


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.box.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    from aiosmtpd.smtp import AuthResult

    ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture(scope="session")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailbox]:
    """aiosmtpd with STARTTLS required before AUTH, certificate from a private CA."""
    require_module("aiosmtpd", "trustme", why="SMTP notification tests")
    import trustme
    from aiosmtpd.controller import Controller

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)
    work = tmp_path_factory.mktemp("smtp")
    ca_path = work / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    box = Mailbox(port=free_port(), ca_path=str(ca_path))
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=box.port,
                            tls_context=ctx, require_starttls=True, authenticator=_authenticator,
                            auth_require_tls=True)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Webhook:
    port: int
    posts: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hook.posts.append({"auth": self.headers.get("Authorization"), "path": self.path,
                               "json": json.loads(body or b"{}")})
            self.send_response(hook.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", hook.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def config(smtp: Mailbox, hook_port: int, *, to: str = "ops@example.org") -> str:
    return f"""
[notifications]
retry_initial = 30
[[notifications.email]]
name = "ops-mail"
host = "127.0.0.1"
port = {smtp.port}
security = "starttls"
username = "{SMTP_USER}"
password = {{ "$env" = "WT_SMTP_PASSWORD" }}
sender = "watchtower@example.org"
to = ["{to}"]
ca_bundle = "{smtp.ca_path}"
[[notifications.apprise]]
name = "ops-hook"
url = {{ "$env" = "WT_HOOK_URL" }}
"""


def fire_and_resolve(tmp_path: Path, text: str, worker_runs: bool = True):  # type: ignore[no-untyped-def]
    s = store(tmp_path)
    cfg = fleet(text)
    proc = AlertProcessor(s, cfg)
    worker = OutboxWorker(s, cfg)
    for i in range(3):
        r = result("fail", T0 + minutes(i), summary="1 name server(s); at least 2 are required")
        s.record([r])
        proc.process([r], now=r.at)
    return s, proc, worker


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, webhook: Webhook) -> None:
    monkeypatch.setenv("WT_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("WT_HOOK_URL", f"json://bot:{WEBHOOK_TOKEN}@127.0.0.1:{webhook.port}/alerts")


def test_firing_and_resolved_notices_arrive_by_mail_and_webhook(
        tmp_path: Path, smtp_server: Mailbox, webhook: Webhook, secrets: None) -> None:
    before = len(smtp_server.messages)
    s, proc, worker = fire_and_resolve(tmp_path, config(smtp_server, webhook.port))
    assert worker.run_once(now=T0 + minutes(3)) == 2
    mail = smtp_server.messages[before]
    assert mail["Subject"] == "[watchtower] FIRING: dns.ns.count on bravo.test"
    assert mail["To"] == "ops@example.org"
    assert "at least 2 are required" in mail.get_payload()
    (post,) = webhook.posts
    assert post["path"] == "/alerts" and post["json"]["type"] == "failure"
    assert post["json"]["title"] == "[watchtower] FIRING: dns.ns.count on bravo.test"
    assert post["auth"] is not None  # apprise sent the URL's credentials as basic auth
    for i in (4, 5):
        r = result("ok", T0 + minutes(i))
        s.record([r])
        proc.process([r], now=r.at)
    assert worker.run_once(now=T0 + minutes(6)) == 2
    assert smtp_server.messages[-1]["Subject"].startswith("[watchtower] RESOLVED")
    assert webhook.posts[-1]["json"]["type"] == "success"
    assert {r.state for r in s.alerts.outbox()} == {"sent"}
    assert {h.channel: h.sent_total for h in s.alerts.channel_health()} == {"ops-mail": 2, "ops-hook": 2}


def test_wrong_smtp_password_is_permanent_and_never_logged(
        tmp_path: Path, smtp_server: Mailbox, webhook: Webhook, secrets: None,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("WT_SMTP_PASSWORD", "not-the-password")
    s, _proc, worker = fire_and_resolve(tmp_path, config(smtp_server, webhook.port))
    worker.run_once(now=T0 + minutes(3))
    mail_row = next(r for r in s.alerts.outbox() if r.channel == "ops-mail")
    assert mail_row.state == "failed" and "535" in (mail_row.last_error or "")
    health = {h.channel: h for h in s.alerts.channel_health()}
    assert health["ops-mail"].broken and not health["ops-hook"].broken
    assert "not-the-password" not in caplog.text + (mail_row.last_error or "")


def test_refused_recipient_is_permanent(tmp_path: Path, smtp_server: Mailbox, webhook: Webhook,
                                        secrets: None) -> None:
    s, _proc, worker = fire_and_resolve(tmp_path, config(smtp_server, webhook.port,
                                                         to="nobody@example.org"))
    worker.run_once(now=T0 + minutes(3))
    row = next(r for r in s.alerts.outbox() if r.channel == "ops-mail")
    assert row.state == "failed" and "550" in (row.last_error or "")


def test_unreachable_relay_and_failing_webhook_are_retried_with_backoff(
        tmp_path: Path, smtp_server: Mailbox, webhook: Webhook, secrets: None,
        caplog: pytest.LogCaptureFixture) -> None:
    dead = Mailbox(port=free_port(), ca_path=smtp_server.ca_path)  # nothing listens there
    webhook.status = 500
    s, _proc, worker = fire_and_resolve(tmp_path, config(dead, webhook.port))
    assert worker.run_once(now=T0 + minutes(3)) == 0
    rows = {r.channel: r for r in s.alerts.outbox()}
    assert {r.state for r in rows.values()} == {"pending"}
    assert all(r.attempts == 1 and r.last_error for r in rows.values())
    assert "Connection" in (rows["ops-mail"].last_error or "")
    assert WEBHOOK_TOKEN not in (rows["ops-hook"].last_error or "") + caplog.text
    health = {h.channel: h for h in s.alerts.channel_health()}
    assert health["ops-hook"].failures_in_row == 1 and not health["ops-hook"].broken
    # the webhook recovers: the retry (after its backoff, not before) delivers the same notice
    webhook.status = 200
    assert worker.run_once(now=T0 + minutes(3.2)) == 0
    assert worker.run_once(now=T0 + minutes(3.6)) == 1
    assert next(r for r in s.alerts.outbox() if r.channel == "ops-hook").state == "sent"
