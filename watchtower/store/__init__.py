"""All persistence: every table, migration and query of watchtower (SQLModel; SQLite by default,
PostgreSQL by URL). Nothing outside this package opens a session or writes SQL, and nothing in it
imports anything above it (only watchtower.model, watchtower.errors and libraries).

Rooms:
    facade.py      `Store`, the one interface (see its docstring for the map)
    db.py          the engine, SQLite pragmas, retries, `StoreError`
    migrations.py  schema version and the ordered steps
    tables/        every table, one module per concern
    results.py     recording: sweeps, streaks, state, flips, evidence, evidence gauges
    history.py     the one history reader (streaks and day rollups)
    retention.py   the raw window, day rollups, evidence collection
    alerts.py remediation.py reports.py dashboard.py heartbeats.py metrics.py   per concern
"""

from watchtower.store.db import StoreError, aware
from watchtower.store.facade import Store
from watchtower.store.heartbeat_reader import HeartbeatReader
from watchtower.store.history import History, rollup_as_rows
from watchtower.store.migrations import SCHEMA_VERSION
from watchtower.store.retention import Policy, PruneReport
from watchtower.store.streaks import Flip
from watchtower.store.tables import (
    DELIVERY_STATES,
    FINAL_STATES,
    OPEN_STATES,
    AcknowledgementRow,
    AlertFlipRow,
    AlertStateRow,
    AuditRow,
    ChannelHealthRow,
    DashboardAuditRow,
    EvidenceRow,
    ExplanationRow,
    FlipRow,
    GaugeRow,
    HeartbeatRow,
    HostLockRow,
    KnownGoodRow,
    OutboxRow,
    RemediationRow,
    ReportRow,
    ResultRow,
    RollupRow,
    StateRow,
    SweepRow,
)

__all__ = [
    "DELIVERY_STATES",
    "FINAL_STATES",
    "OPEN_STATES",
    "SCHEMA_VERSION",
    "AcknowledgementRow",
    "AlertFlipRow",
    "AlertStateRow",
    "AuditRow",
    "ChannelHealthRow",
    "DashboardAuditRow",
    "EvidenceRow",
    "ExplanationRow",
    "Flip",
    "FlipRow",
    "GaugeRow",
    "HeartbeatReader",
    "HeartbeatRow",
    "History",
    "HostLockRow",
    "KnownGoodRow",
    "OutboxRow",
    "Policy",
    "PruneReport",
    "RemediationRow",
    "ReportRow",
    "ResultRow",
    "RollupRow",
    "StateRow",
    "Store",
    "StoreError",
    "SweepRow",
    "aware",
    "rollup_as_rows",
]
