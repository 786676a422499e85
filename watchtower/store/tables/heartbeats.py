"""The `heartbeat` table (schema version 8): the last push of each `[[heartbeats]]` entry.

One row per heartbeat name, overwritten by every ping (a cron job pinging every minute must not
grow the database); what a judgement needs is the last ping, whether it reported failure, the
last good one, and a count. `watchtower run` writes it (POST /ping/<token>), heartbeat.ping
reads it (both through watchtower/store/heartbeats.py). A ping is an upsert in one statement, so
two pings racing leave one consistent row.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

HEARTBEAT_TABLES = ("heartbeat",)


class HeartbeatRow(SQLModel, table=True):
    __tablename__ = "heartbeat"
    name: str = Field(primary_key=True, max_length=200)
    last_at: dt.datetime
    last_ok: bool
    last_ok_at: dt.datetime | None = None
    last_fail_at: dt.datetime | None = None
    pings: int = 0

