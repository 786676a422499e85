"""The outbox worker: sent only after success, backoff, permanent failures, channel health.

The channels here are in-process recorders so that timing and failure modes are exact; the real
SMTP server and apprise deliveries are in tests/integration/alerts/.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.unit.alerts.helpers import T0, fleet, minutes, result, store
from watchtower.alerting.notify import (
    Message,
    OutboxWorker,
    scrub,
)
from watchtower.alerting.processor import AlertProcessor
from watchtower.errors import DeliveryError

CONFIG = """
[notifications]
retry_initial = 60
retry_max = 600
broken_after = 3
[[notifications.email]]
name = "ops-mail"
host = "127.0.0.1"
sender = "wt@example.org"
to = ["ops@example.org"]
"""


class Recorder:
    kind = "test"

    def __init__(self, name: str, failures: list[DeliveryError | None]) -> None:
        self.name = name
        self.failures = failures
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        if self.failures:
            error = self.failures.pop(0)
            if error is not None:
                raise error
        self.sent.append(message)


def firing(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = store(tmp_path)
    cfg = fleet(CONFIG)
    proc = AlertProcessor(s, cfg)
    for i in range(3):
        r = result("fail", T0 + minutes(i))
        s.record([r])
        proc.process([r], now=r.at)
    return s, OutboxWorker(s, cfg)


def test_delivered_row_is_marked_sent(tmp_path: Path) -> None:
    s, worker = firing(tmp_path)
    rec = Recorder("ops-mail", [])
    worker.channels = {"ops-mail": rec}
    assert worker.run_once(now=T0 + minutes(3)) == 1
    assert [m.kind for m in rec.sent] == ["firing"]
    (row,) = s.alerts.outbox()
    assert row.state == "sent" and row.attempts == 1
    assert worker.run_once(now=T0 + minutes(4)) == 0  # never twice
    (health,) = s.alerts.channel_health()
    assert health.sent_total == 1 and not health.broken


def test_transient_failures_back_off_then_deliver(tmp_path: Path) -> None:
    s, worker = firing(tmp_path)
    err = DeliveryError("connection refused", permanent=False)
    rec = Recorder("ops-mail", [err, err, None])
    worker.channels = {"ops-mail": rec}
    now = T0 + minutes(3)
    assert worker.run_once(now=now) == 0
    (row,) = s.alerts.outbox()
    assert row.state == "pending" and row.last_error == "connection refused"
    assert row.next_attempt_at.replace(tzinfo=dt.UTC) == now + dt.timedelta(seconds=60)
    assert worker.run_once(now=now + dt.timedelta(seconds=30)) == 0  # not due yet
    assert rec.failures == [err, None]
    assert worker.run_once(now=now + dt.timedelta(seconds=60)) == 0  # second failure: 120 s
    (row,) = s.alerts.outbox()
    assert row.next_attempt_at.replace(tzinfo=dt.UTC) == now + dt.timedelta(seconds=180)
    assert worker.run_once(now=now + dt.timedelta(seconds=180)) == 1
    (row,) = s.alerts.outbox()
    assert row.state == "sent" and row.attempts == 3
    (health,) = s.alerts.channel_health()
    assert health.failures_total == 2 and health.failures_in_row == 0 and not health.broken


def test_backoff_is_capped() -> None:
    worker = OutboxWorker.__new__(OutboxWorker)
    worker.settings = fleet(CONFIG).notifications
    assert [worker.backoff(n) for n in (1, 2, 3, 4, 5, 9)] == [60, 120, 240, 480, 600, 600]


def test_channel_is_broken_after_failures_in_a_row(tmp_path: Path) -> None:
    s, worker = firing(tmp_path)
    err = DeliveryError("timed out", permanent=False)
    worker.channels = {"ops-mail": Recorder("ops-mail", [err] * 5)}
    now = T0 + minutes(3)
    for step in range(3):
        worker.run_once(now=now + dt.timedelta(hours=step))
    (health,) = s.alerts.channel_health()
    assert health.broken and health.failures_in_row == 3 and health.last_error == "timed out"
    assert s.alerts.outbox()[0].state == "pending"  # still kept for delivery: no flip is lost


def test_permanent_failure_fails_the_row_and_breaks_the_channel(tmp_path: Path) -> None:
    s, worker = firing(tmp_path)
    worker.channels = {"ops-mail": Recorder("ops-mail", [DeliveryError("535 auth", permanent=True)])}
    worker.run_once(now=T0 + minutes(3))
    (row,) = s.alerts.outbox()
    assert row.state == "failed" and row.last_error == "535 auth"
    assert s.alerts.channel_health()[0].broken


def test_unknown_channel_after_a_reload_is_reported(tmp_path: Path) -> None:
    s, worker = firing(tmp_path)
    worker.channels = {}
    worker.run_once(now=T0 + minutes(3))
    (row,) = s.alerts.outbox()
    assert row.state == "failed" and "no longer configured" in (row.last_error or "")


def test_a_claimed_row_is_not_sent_by_a_second_worker(tmp_path: Path) -> None:
    s, worker = firing(tmp_path)
    (row,) = s.alerts.outbox()
    assert row.id is not None
    now = T0 + minutes(3)
    assert worker._claim(row.id, now)
    assert not worker._claim(row.id, now)  # lease held
    assert worker._claim(row.id, now + dt.timedelta(minutes=6))  # lease expired: reclaimable


def test_scrub_hides_secrets() -> None:
    url = "matrix://bot:s3cret-token@matrix.example.org/!room"
    assert "s3cret" not in scrub(f"failed to send to {url}", [url, "s3cret-token"])
    assert len(scrub("x" * 5000, [])) == 500
