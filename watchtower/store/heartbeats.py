"""Heartbeat pings (`Store.heartbeats`); the read-only handle probes get is `HeartbeatReader`
(watchtower/store/heartbeat_reader.py).

`watchtower run` records each ping (POST /ping/<token>) as an upsert of one statement, so two
pings racing leave one consistent row. heartbeat.ping reads the last ping through the probe
context (`ctx.heartbeats.last_ping(name)`), never by opening a store itself: the context's
`HeartbeatReader` opens the database lazily (a sweep without heartbeat checks never does), once
per database and process (worker processes of a large sweep open their own).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from watchtower.store.db import Database, aware
from watchtower.store.tables.core import HEARTBEAT


class HeartbeatStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record_ping(self, name: str, ok: bool, at: dt.datetime) -> None:
        """Store one ping of heartbeat `name` (ok, or `/fail`)."""
        stamp = "last_ok_at" if ok else "last_fail_at"
        insert = pg_insert if self.db.engine.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(HEARTBEAT).values(name=name, last_at=at, last_ok=ok, pings=1,
                                        **{stamp: at})
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"last_at": at, "last_ok": ok, "pings": HEARTBEAT.c.pings + 1, stamp: at})

        def step() -> None:
            with self.db.engine.begin() as conn:
                conn.execute(stmt)

        self.db.retry(step)

    def last_ping(self, name: str) -> dict[str, Any] | None:
        """The stored row of `name` as JSON-ready facts, or None when it never pinged."""
        with self.db.engine.connect() as conn:
            row = conn.execute(select(HEARTBEAT).where(HEARTBEAT.c.name == name)
                               ).mappings().first()
        if row is None:
            return None
        return {key: aware(value).isoformat() if isinstance(value, dt.datetime) else value
                for key, value in row.items()}
