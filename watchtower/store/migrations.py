"""Migrations: a `schema_version` row and an ordered list of steps, one per schema version.

Step 1 creates every table the model has (so a new database gets the current shape at once);
each later release appends steps, written to be idempotent, that bring an older database to the
same shape. The store refuses a database newer than itself. Alembic would add a second source of
truth for a schema that SQLModel already declares; revisit if migrations grow beyond adding
tables, columns and indexes.

Imports nothing above the store: the steps name tables of watchtower/store/tables only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from watchtower.store import tables
from watchtower.store.db import Database, StoreError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 12


def create_tables(engine: Engine, names: Sequence[str]) -> None:
    """Create these tables where missing (idempotent)."""
    SQLModel.metadata.create_all(engine, tables=[SQLModel.metadata.tables[t] for t in names])


def _create_all(engine: Engine) -> None:
    """Step 1: every table of the current model."""
    SQLModel.metadata.create_all(engine)


def _create_alert_tables(engine: Engine) -> None:
    """Step 2: alert state, alert flips, notification outbox, channel health, check gauges."""
    create_tables(engine, tables.ALERT_TABLES)


def _create_remediation_tables(engine: Engine) -> None:
    """Step 3: remediation proposals, their audit trail, host locks."""
    create_tables(engine, tables.REMEDIATION_TABLES)


def _create_report_tables(engine: Engine) -> None:
    """Step 4: compliance reports with their bodies and delivery state."""
    create_tables(engine, tables.REPORT_TABLES)


def create_dashboard_tables(engine: Engine) -> None:
    """Step 5: the dashboard's acknowledgements and its audit of operators' actions (also run
    when the dashboard opens the store)."""
    create_tables(engine, tables.DASHBOARD_TABLES)


def _retention_schema(engine: Engine) -> None:
    """Step 6: day rollups for retention; the `result` indexes become one (target, check,
    last_at). Idempotent (a new database got the current model from step 1)."""
    create_tables(engine, ["result_day"])
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_result_last_at")
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_result_pair_last")
        conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_result_target_check_last "
                             "ON result (target, check_id, last_at)")


def _evidence_reference_index(engine: Engine) -> None:
    """Step 7: on PostgreSQL, index the streaks' `evidence_id` (see `ResultRow`). Idempotent."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_result_evidence_id "
                                 "ON result (evidence_id)")


def _create_heartbeat_table(engine: Engine) -> None:
    """Step 8: the last push of each heartbeat (watchtower/store/heartbeats.py)."""
    create_tables(engine, tables.HEARTBEAT_TABLES)


def _create_explanation_table(engine: Engine) -> None:
    """Step 9: comply-or-explain records (watchtower/store/explanations.py)."""
    create_tables(engine, tables.EXPLANATION_TABLES)


#: (table, column, DDL type and default) added by step 10.
SWEEP_KIND_COLUMNS = (
    ("sweep", "kind", "VARCHAR(20) NOT NULL DEFAULT 'scheduled'"),
    ("result", "adhoc", "BOOLEAN NOT NULL DEFAULT FALSE"),
    ("result", "answered", "BOOLEAN"),
    ("result_day", "answered", "INTEGER NOT NULL DEFAULT 0"),
    ("result_day", "unanswered", "INTEGER NOT NULL DEFAULT 0"),
    ("state", "adhoc", "BOOLEAN NOT NULL DEFAULT FALSE"),
)


def add_columns(engine: Engine, columns: Sequence[tuple[str, str, str]]) -> None:
    """ALTER TABLE ... ADD COLUMN for each (table, column, DDL) the table lacks (idempotent)."""
    for table, column, ddl in columns:
        present = {c["name"] for c in inspect(engine).get_columns(table)}
        if column not in present:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")


def _sweep_kinds(engine: Engine) -> None:
    """Step 10: sweeps have a kind, streaks know whether they are ad hoc and, for availability
    signals, whether the service answered; rolled-up days count answered probes. Sweeps stored
    before were `watchtower check` runs when their schedule was `manual` (the CLI's name) and
    verifications when it was `verify`; a streak that began and ended in such sweeps is ad hoc,
    and so is a state whose streak is.
    Older probes carry no answer (availability figures start with this version)."""
    add_columns(engine, SWEEP_KIND_COLUMNS)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE sweep SET kind = 'adhoc' "
                             "WHERE schedule = 'manual' AND kind = 'scheduled'")
        conn.exec_driver_sql("UPDATE sweep SET kind = 'verify' "
                             "WHERE schedule = 'verify' AND kind = 'scheduled'")
        conn.exec_driver_sql(
            "UPDATE result SET adhoc = TRUE "
            "WHERE sweep_first IN (SELECT id FROM sweep WHERE kind != 'scheduled') "
            "AND sweep_last IN (SELECT id FROM sweep WHERE kind != 'scheduled')")
        conn.exec_driver_sql("UPDATE state SET adhoc = TRUE WHERE result_id IN "
                             "(SELECT id FROM result WHERE adhoc)")


#: (table, column, DDL type) added by step 11.
CAUSE_COLUMNS = (
    ("result", "cause", "VARCHAR(100)"),
    ("result", "cause_target", "VARCHAR(300)"),
    ("state", "cause", "VARCHAR(100)"),
    ("state", "cause_target", "VARCHAR(300)"),
)


def _cause_columns(engine: Engine) -> None:
    """Step 11: `cause` and `cause_target` on `result` and `state` (the root failure of an
    `error` a prerequisite caused, watchtower/probe/dependencies.py), and an index on the
    state's `cause`, which incidents group by. Idempotent."""
    add_columns(engine, CAUSE_COLUMNS)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_state_cause ON state (cause)")


def _create_vantage_tables(engine: Engine) -> None:
    """Step 12: deferrals, vantage results and states, agents (watchtower/store/vantages.py)."""
    create_tables(engine, tables.VANTAGE_TABLES)


MIGRATIONS: list[Callable[[Engine], None]] = [_create_all, _create_alert_tables,
                                              _create_remediation_tables, _create_report_tables,
                                              create_dashboard_tables, _retention_schema,
                                              _evidence_reference_index, _create_heartbeat_table,
                                              _create_explanation_table, _sweep_kinds,
                                              _cause_columns, _create_vantage_tables]
assert len(MIGRATIONS) == SCHEMA_VERSION


def migrate(db: Database) -> int:
    """Bring the database to SCHEMA_VERSION, one recorded step at a time."""

    def step() -> int:
        create_tables(db.engine, ["schema_version"])
        current = schema_version(db)
        if current > SCHEMA_VERSION:
            raise StoreError(f"database schema {current} is newer than this watchtower "
                             f"({SCHEMA_VERSION}); upgrade watchtower")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version - 1](db.engine)
            with Session(db.engine) as s:
                row = s.get(tables.SchemaVersion, 1) or tables.SchemaVersion(id=1, version=0)
                row.version = version
                s.add(row)
                s.commit()
            log.debug("store migrated to schema %d", version)
        if current == 0:  # a new store: its steps are an implementation detail
            log.debug("store created at schema %d", SCHEMA_VERSION)
        elif current < SCHEMA_VERSION:  # an operator's data changed shape: worth one line
            log.info("store upgraded from schema %d to %d", current, SCHEMA_VERSION)
        return SCHEMA_VERSION

    return db.retry(step)


def schema_version(db: Database) -> int:
    with Session(db.engine) as s:
        row = s.get(tables.SchemaVersion, 1)
        return row.version if row else 0
