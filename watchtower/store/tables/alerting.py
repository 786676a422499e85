"""Tables of alerting (schema version 2): alert state, alert flips, outbox, channel health, gauges.

Why these shapes:
- `alert_state`: one row per (check, target) with the consecutive problem/good counts, whether
  the alert fires, and what people were last *told* (`notified`). Keeping "true" and "told" apart
  is what lets a maintenance window close, or a restart happen, without losing or repeating a
  notice: the processor only ever reconciles the two.
- `alert_flip`: every change of the alert (not of the raw status) with the reason.
- `notification_outbox`: each notice for each channel is a row, written in the same transaction
  as the alert state that caused it, delivered by a worker, and marked `sent` only after the
  channel accepted it. A crash between the two leaves a pending row, never a lost flip.
- `channel_health`: last success/error per channel, failures in a row, `broken`; the dashboard
  and `/metrics` read it.
- `check_gauge`: numeric gauges a check put in its evidence under `metrics` (see
  docs/metrics.md), kept apart from the evidence bodies so `/metrics` never parses JSON.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

ALERT_TABLES = ("alert_state", "alert_flip", "notification_outbox", "channel_health",
                "check_gauge")


class AlertStateRow(SQLModel, table=True):
    __tablename__ = "alert_state"
    check_id: str = Field(primary_key=True, max_length=100)
    target: str = Field(primary_key=True, max_length=300)
    family: str = Field(max_length=30)
    problems: int = 0  # consecutive fail/error results
    goods: int = 0  # consecutive ok/warn results
    firing: bool = Field(default=False, index=True)
    status: str = Field(default="ok", max_length=10)  # status that made it fire (or ok)
    since: dt.datetime
    reason: str = ""
    notified: str = Field(default="none", max_length=10)  # none | firing | resolved
    last_notified_at: dt.datetime | None = None
    silenced_by: str | None = Field(default=None, max_length=200)


class AlertFlipRow(SQLModel, table=True):
    __tablename__ = "alert_flip"
    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(max_length=100)
    target: str = Field(max_length=300)
    at: dt.datetime = Field(index=True)
    old: str = Field(max_length=10)  # ok | pending (before firing) | firing (before resolving)
    new: str = Field(max_length=10)
    old_status: str | None = Field(default=None, max_length=10)
    new_status: str = Field(max_length=10)
    reason: str


class OutboxRow(SQLModel, table=True):
    __tablename__ = "notification_outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=100)
    kind: str = Field(max_length=10)  # firing | reminder | resolved
    check_id: str = Field(max_length=100)
    target: str = Field(max_length=300)
    family: str = Field(max_length=30)
    status: str = Field(max_length=10)
    subject: str
    body: str
    created_at: dt.datetime
    state: str = Field(default="pending", max_length=10)  # pending | sent | failed
    attempts: int = 0
    next_attempt_at: dt.datetime
    claimed_until: dt.datetime | None = None
    last_error: str | None = None
    sent_at: dt.datetime | None = None


class ChannelHealthRow(SQLModel, table=True):
    __tablename__ = "channel_health"
    channel: str = Field(primary_key=True, max_length=100)
    kind: str = Field(max_length=20)
    last_success_at: dt.datetime | None = None
    last_failure_at: dt.datetime | None = None
    last_error: str | None = None
    failures_in_row: int = 0
    failures_total: int = 0
    sent_total: int = 0
    broken: bool = False


class GaugeRow(SQLModel, table=True):
    __tablename__ = "check_gauge"
    check_id: str = Field(primary_key=True, max_length=100)
    target: str = Field(primary_key=True, max_length=300)
    name: str = Field(primary_key=True, max_length=100)
    family: str = Field(max_length=30)
    value: float
    at: dt.datetime
