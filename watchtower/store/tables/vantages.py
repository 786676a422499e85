"""The tables of probing from several vantages (schema version 12; watchtower/scaleout).

- `deferral`: one row per (schedule group, tick) the scheduler deferred: how many vantage
  results it expects and by when (the group's interval: a job older than that is dropped, not
  run late). The unique (group, tick) also makes a second scheduler's deferral of the same tick
  a no-op. Judged once: the combined verdicts go through the ordinary write path.
- `vantage_result`: what an agent recorded, one row per (check, target, vantage) of a tick,
  evidence included, until its deferral is judged; then deleted (the combined result's
  evidence keeps each vantage's result), so the table holds the ticks in flight only.
- `vantage_state`: the last status per (check, target, vantage), for /metrics' `vantage` label.
- `agent`: each agent's last heartbeat: a vantage with no live agent has its own alert.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Column, Index
from sqlmodel import Field, SQLModel

VANTAGE_TABLES = ("deferral", "vantage_result", "vantage_state", "agent")


class DeferralRow(SQLModel, table=True):
    __tablename__ = "deferral"
    __table_args__ = (Index("ux_deferral_group_tick", "grp", "tick", unique=True),)
    id: int | None = Field(default=None, primary_key=True)
    grp: str = Field(max_length=200)
    #: the tick, seconds since the epoch (UTC)
    tick: int = Field(sa_column=Column(BigInteger, nullable=False))
    deadline: dt.datetime
    expected: int = 0
    judged: bool = False


class VantageResultRow(SQLModel, table=True):
    __tablename__ = "vantage_result"
    __table_args__ = (Index("ix_vantage_result_group_tick", "grp", "tick"),)
    id: int | None = Field(default=None, primary_key=True)
    grp: str = Field(max_length=200)
    tick: int = Field(sa_column=Column(BigInteger, nullable=False))
    vantage: str = Field(max_length=40)
    check_id: str = Field(max_length=100)
    family: str = Field(max_length=30)
    target: str = Field(max_length=300)
    target_kind: str = Field(max_length=30)
    status: str = Field(max_length=10)
    summary: str
    evidence: str
    duration_ms: float = 0.0
    at: dt.datetime


class VantageStateRow(SQLModel, table=True):
    __tablename__ = "vantage_state"
    check_id: str = Field(primary_key=True, max_length=100)
    target: str = Field(primary_key=True, max_length=300)
    vantage: str = Field(primary_key=True, max_length=40)
    family: str = Field(max_length=30)
    target_kind: str = Field(max_length=30)
    status: str = Field(max_length=10)
    at: dt.datetime


class AgentRow(SQLModel, table=True):
    __tablename__ = "agent"
    name: str = Field(primary_key=True, max_length=200)
    vantage: str = Field(max_length=40, index=True)
    started_at: dt.datetime
    last_seen: dt.datetime
