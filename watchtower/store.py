"""The store: every result and state change with its evidence (SQLModel; SQLite or PostgreSQL).

Shape, and why:
- `state`: one row per (check, target) with the current verdict. The dashboard, `/metrics` and
  alerting read only this table, so their cost does not grow with history.
- `result`: the history as *streaks*. A probe whose status, summary and evidence equal the
  previous one extends the current streak (count, last_at, durations); any difference starts a new
  row. Every probe is kept (as a count in its streak, with the exact first/last time), yet a
  stable fleet probed every 5 minutes grows the table only when something changes.
- `evidence`: bodies stored once per distinct content (sha256), shared by streaks.
- `flip`: every status change with old, new and the reason.
- `sweep`: each run with its counts; a sweep left `running` by a crash is marked `interrupted`
  at the next start, and the results it stored before the crash stay.
Migrations: a `schema_version` row and an ordered list of steps (`MIGRATIONS`); step 1 creates
the tables. Each later release appends steps; the store refuses a database newer than itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Index, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from watchtower import (
    alerts_store,  # its tables join the metadata (migration step 2)
    remediation_store,  # its tables join the metadata (migration step 3)
    report_store,  # its table joins the metadata (migration step 4)
)
from watchtower.model import Result, Status, utcnow

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5
T = TypeVar("T")


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
    __tablename__ = "result"
    __table_args__ = (Index("ix_result_pair_last", "check_id", "target", "last_at"),)
    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(max_length=100)
    target: str = Field(max_length=300)
    target_kind: str = Field(max_length=30)
    family: str = Field(max_length=30)
    status: str = Field(max_length=10)
    summary: str
    evidence_id: int | None = Field(default=None, foreign_key="evidence.id")
    first_at: dt.datetime
    last_at: dt.datetime = Field(index=True)
    count: int = 1
    duration_ms_last: float = 0.0
    duration_ms_max: float = 0.0
    duration_ms_sum: float = 0.0
    sweep_first: int | None = None
    sweep_last: int | None = None


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


class FlipRow(SQLModel, table=True):
    __tablename__ = "flip"
    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(max_length=100)
    target: str = Field(max_length=300)
    at: dt.datetime = Field(index=True)
    old: str | None = Field(default=None, max_length=10)
    new: str = Field(max_length=10)
    reason: str


@dataclass(frozen=True, slots=True)
class Flip:
    check: str
    target: str
    old: Status | None
    new: Status
    reason: str
    at: dt.datetime


def _create_tables(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)


def _create_alert_tables(engine: Engine) -> None:
    """Step 2: alert state, alert flips, notification outbox, channel health, check gauges."""
    SQLModel.metadata.create_all(
        engine, tables=[SQLModel.metadata.tables[t] for t in alerts_store.ALERT_TABLES])


def _create_remediation_tables(engine: Engine) -> None:
    """Step 3: remediation proposals, their audit trail, host locks."""
    SQLModel.metadata.create_all(
        engine,
        tables=[SQLModel.metadata.tables[t] for t in remediation_store.REMEDIATION_TABLES])


def _create_report_tables(engine: Engine) -> None:
    """Step 4: compliance reports with their bodies and delivery state."""
    SQLModel.metadata.create_all(
        engine, tables=[SQLModel.metadata.tables[t] for t in report_store.REPORT_TABLES])


def _create_dashboard_tables(engine: Engine) -> None:
    """Step 5: the dashboard's acknowledgements and its audit of operators' actions."""
    from watchtower.dashboards import tables

    tables.ensure_tables(engine)


MIGRATIONS: list[Callable[[Engine], None]] = [_create_tables, _create_alert_tables,
                                              _create_remediation_tables, _create_report_tables,
                                              _create_dashboard_tables]
assert len(MIGRATIONS) == SCHEMA_VERSION


class StoreError(RuntimeError):
    """The store could not be reached or written after retries: reported, never ignored."""


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes; everything in watchtower is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def evidence_json(evidence: dict[str, Any]) -> str:
    return json.dumps(evidence, sort_keys=True, separators=(",", ":"), default=str)


class Store:
    """Opens the database, migrates it, and records sweeps and results."""

    def __init__(self, url: str, *, retries: int = 8, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.retries = retries
        self.busy_timeout = busy_timeout
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect",
                         lambda conn, _rec: _sqlite_pragmas(conn, int(busy_timeout * 1000)))
        self._evidence_ids: dict[str, int] = {}
        self.migrate()

    # -- schema -----------------------------------------------------------------------------

    def migrate(self) -> int:
        def step() -> int:
            version_table = SQLModel.metadata.tables["schema_version"]
            SchemaVersion.metadata.create_all(self.engine, tables=[version_table])
            with Session(self.engine) as s:
                row = s.get(SchemaVersion, 1)
                current = row.version if row else 0
            if current > SCHEMA_VERSION:
                raise StoreError(f"database schema {current} is newer than this watchtower "
                                 f"({SCHEMA_VERSION}); upgrade watchtower")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version - 1](self.engine)
                with Session(self.engine) as s:
                    row = s.get(SchemaVersion, 1) or SchemaVersion(id=1, version=0)
                    row.version = version
                    s.add(row)
                    s.commit()
                log.info("store migrated to schema %d", version)
            return SCHEMA_VERSION

        return self._retry(step)

    def schema_version(self) -> int:
        with Session(self.engine) as s:
            row = s.get(SchemaVersion, 1)
            return row.version if row else 0

    # -- writes -----------------------------------------------------------------------------

    def _retry(self, fn: Callable[[], T]) -> T:
        """Retry on a locked or briefly unavailable database; raise StoreError at the end."""
        delay = 0.05
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except OperationalError as exc:
                if attempt == self.retries:
                    raise StoreError(f"store unavailable after {attempt + 1} attempts: "
                                     f"{exc.orig}") from exc
                log.warning("store busy or unavailable (%s); retrying in %.2fs", exc.orig, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def begin_sweep(self, schedule: str, total: int) -> int:
        def step() -> int:
            with Session(self.engine) as s:
                row = SweepRow(schedule=schedule, started_at=utcnow(), total=total)
                s.add(row)
                s.commit()
                assert row.id is not None
                return row.id

        return self._retry(step)

    def finish_sweep(self, sweep_id: int, counts: dict[Status, int],
                     state: str = "done") -> None:
        def step() -> None:
            with Session(self.engine) as s:
                row = s.get(SweepRow, sweep_id)
                if row is None:
                    return
                row.finished_at = utcnow()
                row.state = state
                row.ok, row.warn = counts.get(Status.OK, 0), counts.get(Status.WARN, 0)
                row.fail, row.error = counts.get(Status.FAIL, 0), counts.get(Status.ERROR, 0)
                s.add(row)
                s.commit()

        self._retry(step)

    def mark_interrupted(self) -> int:
        """Sweeps left running by a crash are closed as `interrupted`; their results stay."""

        def step() -> int:
            with Session(self.engine) as s:
                rows = s.exec(select(SweepRow).where(SweepRow.state == "running")).all()
                for row in rows:
                    row.state = "interrupted"
                    s.add(row)
                s.commit()
                return len(rows)

        return self._retry(step)

    def record(self, results: Sequence[Result], sweep_id: int | None = None) -> list[Flip]:
        """Store a batch of results in one transaction; returns the status flips it caused."""
        if not results:
            return []
        return self._retry(lambda: self._record(results, sweep_id))

    def _evidence_id(self, s: Session, body: str) -> int:
        digest = hashlib.sha256(body.encode()).hexdigest()
        cached = self._evidence_ids.get(digest)
        if cached is not None:
            return cached
        row = s.exec(select(EvidenceRow).where(EvidenceRow.sha256 == digest)).first()
        if row is None:
            row = EvidenceRow(sha256=digest, body=body)
            s.add(row)
            s.flush()
        assert row.id is not None
        if len(self._evidence_ids) > 200_000:
            self._evidence_ids.clear()
        self._evidence_ids[digest] = row.id
        return row.id

    def _record(self, results: Sequence[Result], sweep_id: int | None) -> list[Flip]:
        flips: list[Flip] = []
        with Session(self.engine) as s:
            try:
                keys = {(r.check, r.target.name) for r in results}
                states = {(st.check_id, st.target): st for st in self._states_for(s, keys)}
                for r in results:
                    flip = self._record_one(s, r, states, sweep_id)
                    if flip is not None:
                        flips.append(flip)
                s.commit()
            except Exception:
                s.rollback()
                # The evidence id memo may name rows that were rolled back.
                self._evidence_ids.clear()
                raise
        return flips

    def _states_for(self, s: Session, keys: set[tuple[str, str]]) -> list[StateRow]:
        if not keys:
            return []
        checks = {k[0] for k in keys}
        targets = {k[1] for k in keys}
        rows = s.exec(select(StateRow).where(col(StateRow.check_id).in_(checks),
                                             col(StateRow.target).in_(targets))).all()
        return [r for r in rows if (r.check_id, r.target) in keys]

    def _record_one(self, s: Session, r: Result, states: dict[tuple[str, str], StateRow],
                    sweep_id: int | None) -> Flip | None:
        body = evidence_json(r.evidence)
        evidence_id = self._evidence_id(s, body)
        key = (r.check, r.target.name)
        st = states.get(key)
        status = str(r.status)
        same = (st is not None and st.status == status and st.summary == r.summary
                and st.evidence_id == evidence_id and st.result_id is not None)
        result_row = s.get(ResultRow, st.result_id) if same and st is not None else None
        if result_row is not None:
            result_row.count += 1
            result_row.last_at = r.at
            result_row.duration_ms_last = r.duration_ms
            result_row.duration_ms_max = max(result_row.duration_ms_max, r.duration_ms)
            result_row.duration_ms_sum += r.duration_ms
            result_row.sweep_last = sweep_id
        else:
            result_row = ResultRow(
                check_id=r.check, target=r.target.name, target_kind=str(r.target.kind),
                family=r.family, status=status, summary=r.summary, evidence_id=evidence_id,
                first_at=r.at, last_at=r.at, count=1, duration_ms_last=r.duration_ms,
                duration_ms_max=r.duration_ms, duration_ms_sum=r.duration_ms,
                sweep_first=sweep_id, sweep_last=sweep_id,
            )
        s.add(result_row)
        s.flush()
        flip: Flip | None = None
        if st is None:
            st = StateRow(check_id=r.check, target=r.target.name,
                          target_kind=str(r.target.kind), family=r.family, status=status,
                          summary=r.summary, since=r.at, last_at=r.at,
                          tags=json.dumps(list(r.target.tags)))
            states[key] = st
            flip = Flip(r.check, r.target.name, None, r.status, r.summary, r.at)
        elif st.status != status:
            flip = Flip(r.check, r.target.name, Status(st.status), r.status, r.summary, r.at)
            st.since = r.at
            st.streak = 0
        st.status = status
        st.summary = r.summary
        st.last_at = r.at
        st.duration_ms = r.duration_ms
        st.result_id = result_row.id
        st.evidence_id = evidence_id
        st.streak += 1
        st.tags = json.dumps(list(r.target.tags))
        s.add(st)
        if flip is not None:
            s.add(FlipRow(check_id=flip.check, target=flip.target, at=flip.at,
                          old=str(flip.old) if flip.old else None, new=str(flip.new),
                          reason=flip.reason[:2000]))
        return flip

    # -- reads ------------------------------------------------------------------------------

    def current(self) -> list[StateRow]:
        with Session(self.engine) as s:
            return list(s.exec(select(StateRow)).all())

    def history(self, check_id: str, target: str, since: dt.datetime | None = None
                ) -> list[ResultRow]:
        with Session(self.engine) as s:
            q = select(ResultRow).where(ResultRow.check_id == check_id,
                                        ResultRow.target == target)
            if since is not None:
                q = q.where(ResultRow.last_at >= since)
            return list(s.exec(q.order_by(col(ResultRow.first_at))).all())

    def evidence(self, evidence_id: int) -> dict[str, Any]:
        with Session(self.engine) as s:
            row = s.get(EvidenceRow, evidence_id)
            return json.loads(row.body) if row else {}

    def flips(self, since: dt.datetime | None = None) -> list[FlipRow]:
        with Session(self.engine) as s:
            q = select(FlipRow)
            if since is not None:
                q = q.where(FlipRow.at >= since)
            return list(s.exec(q.order_by(col(FlipRow.at))).all())

    def sweeps(self, limit: int = 50) -> list[SweepRow]:
        with Session(self.engine) as s:
            q = select(SweepRow).order_by(col(SweepRow.id).desc()).limit(limit)
            return list(s.exec(q).all())

    def probes_stored(self) -> int:
        """How many probe results the history holds (streak counts summed)."""
        with Session(self.engine) as s:
            value = s.exec(text("SELECT COALESCE(SUM(count), 0) FROM result")).one()  # type: ignore[call-overload]
            return int(value[0])

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, busy_ms: int) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def status_counts(statuses: Iterable[str]) -> dict[Status, int]:
    counts: dict[Status, int] = {}
    for value in statuses:
        st = Status(value)
        counts[st] = counts.get(st, 0) + 1
    return counts


def aware(value: dt.datetime) -> dt.datetime:
    return _aware(value)
