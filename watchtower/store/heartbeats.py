"""The `heartbeat` table (schema version 8): the last push of each `[[heartbeats]]` entry.

One row per heartbeat name, overwritten by every ping (a cron job pinging every minute must not
grow the database); what a judgement needs is the last ping, whether it reported failure, the
last good one, and a count. `watchtower run` writes it (POST /ping/<token>), heartbeat.ping
reads it. A ping is an upsert in one statement, so two pings racing leave one consistent row.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import Field, SQLModel

if TYPE_CHECKING:
    from watchtower.store import Store

HEARTBEAT_TABLES = ("heartbeat",)


class HeartbeatRow(SQLModel, table=True):
    __tablename__ = "heartbeat"
    name: str = Field(primary_key=True, max_length=200)
    last_at: dt.datetime
    last_ok: bool
    last_ok_at: dt.datetime | None = None
    last_fail_at: dt.datetime | None = None
    pings: int = 0


def record_ping(store: Store, name: str, ok: bool, at: dt.datetime) -> None:
    """Store one ping of heartbeat `name` (ok, or `/fail`)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    table = SQLModel.metadata.tables["heartbeat"]
    values: dict[str, Any] = {"name": name, "last_at": at, "last_ok": ok, "pings": 1,
                              "last_ok_at" if ok else "last_fail_at": at}
    dialect = store.engine.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table).values(**values)
    update = {"last_at": at, "last_ok": ok, "pings": table.c.pings + 1,
              ("last_ok_at" if ok else "last_fail_at"): at}
    stmt = stmt.on_conflict_do_update(index_elements=["name"], set_=update)

    def step() -> None:
        with store.engine.begin() as conn:
            conn.execute(stmt)

    store._retry(step)


def last_ping(store: Store, name: str) -> dict[str, Any] | None:
    """The stored row of `name` as JSON-ready facts, or None when it never pinged."""
    table = SQLModel.metadata.tables["heartbeat"]
    with store.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.name == name)).mappings().first()
    if row is None:
        return None
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dt.datetime):
            value = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
        out[key] = value
    return out
