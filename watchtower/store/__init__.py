"""All persistence: every table, migration and query of watchtower (SQLModel; SQLite by default,
PostgreSQL by URL). Nothing outside this package opens a session or writes SQL."""

from watchtower.store.core import (
    SCHEMA_VERSION,
    EvidenceRow,
    Flip,
    FlipRow,
    ResultRow,
    RollupRow,
    StateRow,
    Store,
    StoreError,
    SweepRow,
    aware,
)

__all__ = [
    "SCHEMA_VERSION",
    "EvidenceRow",
    "Flip",
    "FlipRow",
    "ResultRow",
    "RollupRow",
    "StateRow",
    "Store",
    "StoreError",
    "SweepRow",
    "aware",
]
