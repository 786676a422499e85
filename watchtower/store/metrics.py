"""The reads `/metrics` renders (watchtower/metrics/): raw column reads, no ORM objects.

A scrape reads the `state` table (one row per check and target), the evidence gauges
(`check_gauge`, written with every recorded result) and a few small tables. At 1,000 domains x the
catalog that is ~45,000 state rows per render, so these are plain SQL with the datetime turned
into epoch seconds by the database (in C), never per row in Python.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect

from watchtower.store.db import Database

#: (check, family, target, status, last run as epoch seconds, duration in seconds)
PairRow = tuple[str, str, str, str, float, float]
#: (gauge name, check, family, target, value)
GaugeSample = tuple[str, str, str, str, float]


class MetricsReads:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._has_remediation: tuple[float, bool] = (0.0, False)

    def _query(self, sql: str) -> list[Any]:
        with self.db.engine.connect() as conn:
            return list(conn.exec_driver_sql(sql).fetchall())

    def status_counts(self) -> dict[tuple[str, str], int]:
        """(family, status) -> number of (check, target) pairs in it now."""
        return {(f, s): int(n) for f, s, n in self._query(
            "SELECT family, status, COUNT(*) FROM state GROUP BY family, status")}

    def alert_counts(self) -> list[tuple[str, int, int]]:
        """(family, alerts firing, alerts silenced by a maintenance window)."""
        return [(family, int(firing or 0), int(silenced or 0)) for family, firing, silenced
                in self._query("SELECT family, SUM(CASE WHEN firing THEN 1 ELSE 0 END), "
                               "SUM(CASE WHEN silenced_by IS NULL THEN 0 ELSE 1 END) "
                               "FROM alert_state GROUP BY family")]

    def channel_health(self) -> list[tuple[str, int, int, bool, Any]]:
        """(channel, sent, failures, broken, last success as stored) per channel."""
        return [(channel, int(sent), int(failed), bool(broken), last)
                for channel, sent, failed, broken, last in self._query(
                    "SELECT channel, sent_total, failures_total, broken, last_success_at "
                    "FROM channel_health")]

    def outbox_counts(self) -> dict[str, int]:
        return {str(state): int(n) for state, n in self._query(
            "SELECT state, COUNT(*) FROM notification_outbox GROUP BY state")}

    def remediation_counts(self) -> dict[tuple[str, str], int]:
        """(remediation id, state) -> proposals; empty on a database without the table (the
        check is cached for a minute, as a scrape comes every few seconds)."""
        checked_at, present = self._has_remediation
        if time.monotonic() - checked_at > 60:
            present = inspect(self.db.engine).has_table("remediation")
            self._has_remediation = (time.monotonic(), present)
        if not present:
            return {}
        return {(rid, state): int(n) for rid, state, n in self._query(
            "SELECT remediation, state, COUNT(*) FROM remediation GROUP BY remediation, state")}

    def _epoch(self, column: str) -> str:
        """SQL for a stored UTC datetime as epoch seconds, computed by the database."""
        if self.db.sqlite:
            return f"ROUND((julianday({column}) - 2440587.5) * 86400.0, 3)"
        return f"EXTRACT(EPOCH FROM {column})"

    def pairs(self) -> tuple[Sequence[PairRow], Sequence[GaugeSample]]:
        """Every state row and every evidence gauge (by name), read in one connection."""
        with self.db.engine.connect() as conn:
            state = conn.exec_driver_sql(
                f"SELECT check_id, family, target, status, {self._epoch('last_at')}, "  # noqa: S608
                "duration_ms / 1000.0 FROM state").fetchall()
            gauges = conn.exec_driver_sql(
                "SELECT name, check_id, family, target, value FROM check_gauge ORDER BY name"
            ).fetchall()
        return state, gauges  # Rows are tuples: handed on as they are, not copied
