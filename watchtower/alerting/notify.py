"""Notification channels and the outbox worker that delivers alert notices.

Notices are rows (`notification_outbox`, written by watchtower/alerting/processor.py with the alert
state that caused them). The worker claims due rows with a compare-and-set lease, so two workers
never send the same row, hands each to its channel, and marks it `sent` only after the channel
accepted it. A transient failure reschedules the row with exponential backoff (`retry_initial`
doubling up to `retry_max`); a permanent one (the relay refuses the sender, apprise cannot parse
its URL) marks the row `failed`, kept for the dashboard. Each channel's health (last success, last
error, failures in a row, `broken`) is a row in `channel_health`, read by the dashboard and
`/metrics`.

Channels: email through the operator's SMTP relay (watchtower/net/mailer.py), and apprise for
Matrix rooms, ntfy, webhooks and the rest it supports. Apprise URLs embed tokens, so they are
Secrets read at send time, and every error text is scrubbed of them before it is stored or
logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from watchtower.config import AppriseChannel, EmailChannel, Fleet, Notifications
from watchtower.errors import ConfigError, DeliveryError
from watchtower.model import utcnow
from watchtower.net.mailer import Relay, send_mail
from watchtower.store import ChannelHealthRow, OutboxRow, Store, aware

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    body: str
    kind: str  # firing | reminder | resolved


class Channel(Protocol):
    name: str
    kind: str

    def send(self, message: Message) -> None:
        """Deliver or raise DeliveryError."""


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Error text safe to store and log: secret values replaced, length capped."""
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text[:MAX_ERROR_CHARS]


class EmailSender:
    kind = "email"

    def __init__(self, spec: EmailChannel) -> None:
        self.name = spec.name
        self.spec = spec

    def send(self, message: Message) -> None:
        spec = self.spec
        try:
            password = spec.password.reveal() if spec.password is not None else None
        except ConfigError as exc:
            raise DeliveryError(exc.problems[0], permanent=True) from None
        relay = Relay(spec.host, spec.port, spec.security, spec.username, spec.ca_bundle)
        try:
            send_mail(relay, password, spec.sender, spec.to, message.subject, message.body)
        except DeliveryError as exc:
            raise DeliveryError(scrub(str(exc), [password or ""]),
                                permanent=exc.permanent) from None


class AppriseSender:
    kind = "apprise"

    def __init__(self, spec: AppriseChannel) -> None:
        self.name = spec.name
        self.spec = spec

    def send(self, message: Message) -> None:
        import apprise

        try:
            url = self.spec.url.reveal()
        except ConfigError as exc:
            raise DeliveryError(exc.problems[0], permanent=True) from None
        client = apprise.Apprise()
        if not client.add(url):
            # The URL itself is the secret: say which channel, never what the URL was.
            raise DeliveryError("apprise does not understand the channel URL", permanent=True)
        notify_type = (apprise.NotifyType.SUCCESS if message.kind == "resolved"
                       else apprise.NotifyType.FAILURE)
        log_capture: Any = apprise.LogCapture  # untyped in apprise
        with log_capture(level=logging.WARNING) as captured:
            ok = client.notify(body=message.body, title=message.subject,
                               notify_type=notify_type)
        if not ok:
            detail = " ".join(captured.getvalue().split())
            raise DeliveryError(scrub(f"apprise delivery failed: {detail}", [url]),
                                permanent=False)


def build_channels(notifications: Notifications) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for e in notifications.email:
        channels[e.name] = EmailSender(e)
    for a in notifications.apprise:
        channels[a.name] = AppriseSender(a)
    return channels


class OutboxWorker:
    """Delivers due outbox rows; `run_once` for tests and benches, `start` for `watchtower run`."""

    def __init__(self, store: Store, fleet: Fleet, *, poll_seconds: float = 2.0) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.reconfigure(fleet)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def reconfigure(self, fleet: Fleet) -> None:
        self.settings = fleet.notifications
        self.channels = build_channels(fleet.notifications)

    def wake(self) -> None:
        """Deliver now rather than at the next poll (called after a batch wrote notices)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the worker must survive a store outage
                log.error("outbox worker: %s", exc)
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    # -- one pass -----------------------------------------------------------------------------

    def run_once(self, now: dt.datetime | None = None, limit: int = 100) -> int:
        """Try every due row once; returns how many were delivered."""
        now = now or utcnow()
        sent = 0
        for row_id in self._due(now, limit):
            if self._stop.is_set():
                break
            if not self._claim(row_id, now):
                continue
            sent += self._deliver(row_id, now)
        return sent

    def _due(self, now: dt.datetime, limit: int) -> list[int]:
        return self.store.alerts.due(now, limit)

    def _claim(self, row_id: int, now: dt.datetime) -> bool:
        """Compare-and-set lease: only the worker whose UPDATE changed the row sends it."""
        return self.store.alerts.claim(row_id, now, LEASE)

    def _deliver(self, row_id: int, now: dt.datetime) -> int:
        row = self.store.alerts.outbox_row(row_id)
        if row is None:
            return 0
        channel = self.channels.get(row.channel)
        error: DeliveryError | None = None
        if channel is None:
            error = DeliveryError("channel is no longer configured", permanent=True)
        else:
            try:
                channel.send(Message(row.subject, row.body, row.kind))
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # a channel bug must not stop the other rows
                error = DeliveryError(f"{type(exc).__name__}", permanent=False)
        row.attempts += 1
        row.claimed_until = None
        health = self.store.alerts.channel(row.channel) or ChannelHealthRow(
            channel=row.channel, kind=channel.kind if channel else "unknown")
        if error is None:
            row.state, row.sent_at, row.last_error = "sent", now, None
            health.last_success_at, health.failures_in_row = now, 0
            health.sent_total += 1
            health.broken = False
        else:
            self._failed(row, health, error, now)
        self.store.alerts.save_delivery(row, health)
        return 1 if error is None else 0

    def _failed(self, row: OutboxRow, health: ChannelHealthRow, error: DeliveryError,
                now: dt.datetime) -> None:
        row.last_error = str(error)
        if error.permanent:
            row.state = "failed"
        else:
            row.next_attempt_at = now + dt.timedelta(seconds=self.backoff(row.attempts))
        health.last_failure_at, health.last_error = now, str(error)
        health.failures_in_row += 1
        health.failures_total += 1
        health.broken = error.permanent or (health.failures_in_row >= self.settings.broken_after)
        log.warning("notification %d via %s failed (%s, attempt %d): %s", row.id, row.channel,
                    "permanent" if error.permanent else "will retry", row.attempts, error)

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` failed ones (exponential, capped)."""
        initial, cap = self.settings.retry_initial, self.settings.retry_max
        return float(min(cap, initial * 2 ** max(0, attempts - 1)))


def age_seconds(row: OutboxRow, now: dt.datetime) -> float:
    return (now - aware(row.created_at)).total_seconds()
