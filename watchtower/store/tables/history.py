"""The tables of probing and its history: sweeps, evidence, streaks, day rollups, state, flips.

Shape, and why:
- `state`: one row per (check, target) with the current verdict. The dashboard, `/metrics` and
  alerting read only this table, so their cost does not grow with history.
- `result`: the history as *streaks*. A probe whose status, summary and evidence equal the
  previous one extends the current streak (count, last_at, durations); any difference starts a new
  row. Every probe is kept (as a count in its streak, with the exact first/last time), yet a
  stable fleet probed every 5 minutes grows the table only when something changes.
- `evidence`: bodies stored once per distinct content (sha256), shared by streaks.
- `flip`: every status change with old, new and the reason.
- `sweep`: each run with its counts and its `kind` (`scheduled`; `adhoc` for `watchtower check`;
  `verify` for a remediation's verification); a sweep left `running` by a crash is marked
  `interrupted` at the next start, and the results it stored before the crash stay.
- Streaks of sweeps that are not `scheduled` are `adhoc` (schema 10): they update `state` like
  any result, never extend a scheduled streak (nor the reverse), and reports and trends leave
  them out unless asked: an ad-hoc run is not a sample of the period. Retention drops them
  instead of rolling them up.
- `answered` (schema 10): for the probes of an availability signal
  (watchtower/probe/availability.py), whether the service answered; NULL for other checks.
  Stamped on the result before it is stored; a rolled-up day keeps the counts.
- `result_day`: history older than the raw window, one row per (check, target, day), written by
  watchtower/store/retention.py; watchtower/store/history.py reads both kinds.
- `schema_version`: the one row watchtower/store/migrations.py keeps.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

HISTORY_TABLES = ("sweep", "evidence", "result", "state", "flip")


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    id: int = Field(default=1, primary_key=True)
    version: int


class SweepRow(SQLModel, table=True):
    __tablename__ = "sweep"
    id: int | None = Field(default=None, primary_key=True)
    schedule: str = Field(default="manual", max_length=200)
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    state: str = Field(default="running", max_length=20)
    #: scheduled | adhoc | verify (see the module docstring)
    kind: str = Field(default="scheduled", max_length=20)
    total: int = 0
    ok: int = 0
    warn: int = 0
    fail: int = 0
    error: int = 0


class EvidenceRow(SQLModel, table=True):
    __tablename__ = "evidence"
    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, unique=True, index=True)
    body: str


class ResultRow(SQLModel, table=True):
    """A streak (see the module docstring). Kept `history_raw_days`; then folded into `RollupRow`s
    (watchtower/store/retention.py). One index, (target, check, last_at): it serves a pair's
    history, a target's (dashboard) and a report's targets; retention scans the table once a day
    instead of paying a `last_at` index that every streak extension rewrote (schema 6).

    On PostgreSQL also `evidence_id` (schema 7): deleting an evidence body makes the server look
    for streaks that still name it, and without an index that is a scan of the whole table per
    body (retention's evidence collection took 3.6 s for 500 bodies beside 100,000 streaks, 0.03
    s with it). SQLite skips that check during collection instead (retention.py), and saves the
    index's pages."""

    __tablename__ = "result"
    __table_args__ = (Index("ix_result_target_check_last", "target", "check_id", "last_at"),
                      Index("ix_result_evidence_id", "evidence_id").ddl_if(dialect="postgresql"))
    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(max_length=100)
    target: str = Field(max_length=300)
    target_kind: str = Field(max_length=30)
    family: str = Field(max_length=30)
    status: str = Field(max_length=10)
    summary: str
    evidence_id: int | None = Field(default=None, foreign_key="evidence.id")
    first_at: dt.datetime
    last_at: dt.datetime
    count: int = 1
    duration_ms_last: float = 0.0
    duration_ms_max: float = 0.0
    duration_ms_sum: float = 0.0
    sweep_first: int | None = None
    sweep_last: int | None = None
    #: probed by a sweep that was not scheduled (schema 10)
    adhoc: bool = False
    #: the service answered (availability signals only; schema 10)
    answered: bool | None = None


class RollupRow(SQLModel, table=True):
    """One (check, target, UTC day) of history older than the raw retention: the probes per
    status (exact per day), the worst status, status changes that day, and the verdict at the
    day's end (with its evidence, kept from garbage collection). Written by retention only."""

    __tablename__ = "result_day"
    __table_args__ = (Index("ux_result_day_pair", "target", "check_id", "day", unique=True),)
    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(max_length=100)
    target: str = Field(max_length=300)
    target_kind: str = Field(max_length=30)
    family: str = Field(max_length=30)
    day: dt.date
    first_at: dt.datetime
    last_at: dt.datetime
    ok: int = 0
    warn: int = 0
    fail: int = 0
    error: int = 0
    worst: str = Field(max_length=10)
    flips: int = 0
    streaks: int = 0
    last_status: str = Field(max_length=10)
    last_summary: str
    last_evidence_id: int | None = None
    duration_ms_sum: float = 0.0
    duration_ms_max: float = 0.0
    #: probes of an availability signal that saw the service answer / not answer (schema 10)
    answered: int = 0
    unanswered: int = 0

    @property
    def probes(self) -> int:
        return self.ok + self.warn + self.fail + self.error


class StateRow(SQLModel, table=True):
    __tablename__ = "state"
    check_id: str = Field(primary_key=True, max_length=100)
    target: str = Field(primary_key=True, max_length=300)
    target_kind: str = Field(max_length=30)
    family: str = Field(max_length=30, index=True)
    status: str = Field(max_length=10, index=True)
    summary: str
    since: dt.datetime
    last_at: dt.datetime
    duration_ms: float = 0.0
    result_id: int | None = None
    evidence_id: int | None = None
    streak: int = 1
    tags: str = "[]"
    #: the latest result came from a sweep that was not scheduled (schema 10)
    adhoc: bool = False


class FlipRow(SQLModel, table=True):
    __tablename__ = "flip"
    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(max_length=100)
    target: str = Field(max_length=300)
    at: dt.datetime = Field(index=True)
    old: str | None = Field(default=None, max_length=10)
    new: str = Field(max_length=10)
    reason: str
