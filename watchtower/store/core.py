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
- `result_day`: history older than the raw window, one row per (check, target, day), written by
  watchtower/store/retention.py; `spans`/`history` read both kinds.
Migrations: a `schema_version` row and an ordered list of steps (`MIGRATIONS`); step 1 creates
the tables. Each later release appends steps; the store refuses a database newer than itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Index, bindparam, case, event, text
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from watchtower.model import Result, Status, utcnow
from watchtower.store import (
    alerting,  # its tables join the metadata (migration step 2)
    explanations,  # its table joins the metadata (migration step 9)
    heartbeats,  # its table joins the metadata (migration step 8)
    remediation,  # its tables join the metadata (migration step 3)
    reports,  # its table joins the metadata (migration step 4)
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 9
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
        engine, tables=[SQLModel.metadata.tables[t] for t in alerting.ALERT_TABLES])


def _create_remediation_tables(engine: Engine) -> None:
    """Step 3: remediation proposals, their audit trail, host locks."""
    SQLModel.metadata.create_all(
        engine,
        tables=[SQLModel.metadata.tables[t] for t in remediation.REMEDIATION_TABLES])


def _create_report_tables(engine: Engine) -> None:
    """Step 4: compliance reports with their bodies and delivery state."""
    SQLModel.metadata.create_all(
        engine, tables=[SQLModel.metadata.tables[t] for t in reports.REPORT_TABLES])


def _create_dashboard_tables(engine: Engine) -> None:
    """Step 5: the dashboard's acknowledgements and its audit of operators' actions."""
    from watchtower.store import dashboard as tables

    tables.ensure_tables(engine)


def _retention_schema(engine: Engine) -> None:
    """Step 6: day rollups for retention; the `result` indexes become one (target, check,
    last_at). Idempotent (a new database got the current model from step 1)."""
    SQLModel.metadata.create_all(engine, tables=[SQLModel.metadata.tables["result_day"]])
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
    SQLModel.metadata.create_all(
        engine, tables=[SQLModel.metadata.tables[t] for t in heartbeats.HEARTBEAT_TABLES])


def _create_explanation_table(engine: Engine) -> None:
    """Step 9: comply-or-explain records (watchtower/store/explanations.py). Idempotent."""
    SQLModel.metadata.create_all(
        engine, tables=[SQLModel.metadata.tables[t] for t in explanations.EXPLANATION_TABLES])


MIGRATIONS: list[Callable[[Engine], None]] = [_create_tables, _create_alert_tables,
                                              _create_remediation_tables, _create_report_tables,
                                              _create_dashboard_tables, _retention_schema,
                                              _evidence_reference_index, _create_heartbeat_table,
                                              _create_explanation_table]
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
        try:
            return self._retry(lambda: self._record(results, sweep_id))
        except IntegrityError:
            # Retention run by another process (`watchtower store prune`) may have collected
            # an evidence body this process's memo still names; the failed batch cleared the
            # memo, so one more try looks every body up afresh.
            log.info("evidence memo was stale (collected by retention?); recording again")
            return self._retry(lambda: self._record(results, sweep_id))

    def _evidence_ids_for(self, conn: Connection, bodies: dict[str, str]) -> dict[str, int]:
        """Evidence ids by sha256 for the batch's bodies: memo, then one SELECT, then one
        multi-row INSERT for the bodies never seen before."""
        memo = self._evidence_ids  # one dict throughout: retention may swap in a new one
        ids = {d: memo[d] for d in bodies if d in memo}
        missing = [d for d in bodies if d not in ids]
        ev = EvidenceRow.__table__  # type: ignore[attr-defined]
        for chunk in _chunks(missing, 500):
            for row_id, digest in conn.execute(
                    sa_select(ev.c.id, ev.c.sha256).where(ev.c.sha256.in_(chunk))):
                ids[digest] = row_id
        new = [{"sha256": d, "body": bodies[d]} for d in missing if d not in ids]
        if new:
            conn.execute(sa_insert(ev), new)
            for chunk in _chunks([n["sha256"] for n in new], 500):
                for row_id, digest in conn.execute(
                        sa_select(ev.c.id, ev.c.sha256).where(ev.c.sha256.in_(chunk))):
                    ids[digest] = row_id
        if len(memo) > 200_000:
            memo.clear()
        memo.update(ids)
        return ids

    def _record(self, results: Sequence[Result], sweep_id: int | None) -> list[Flip]:
        """One transaction of set-based statements (SQLAlchemy Core, executemany), not one ORM
        object per row: a sweep's writes compete for the GIL with its probes, so the store's
        CPU per result bounds the whole sweep (profiled: ORM writes were 60 % of a sweep)."""
        flips: list[Flip] = []
        try:
            with self.engine.begin() as conn:
                # A pair twice in one batch (rare) goes to the next slice, so every slice
                # sees the state its predecessor wrote.
                for part in _unique_pairs(results):
                    flips.extend(self._record_part(conn, part, sweep_id))
        except Exception:
            # The evidence id memo may name rows that were rolled back.
            self._evidence_ids.clear()
            raise
        return flips

    def _record_part(self, conn: Connection, results: Sequence[Result],
                     sweep_id: int | None) -> list[Flip]:
        res_t = ResultRow.__table__  # type: ignore[attr-defined]
        st_t = StateRow.__table__  # type: ignore[attr-defined]
        flip_t = FlipRow.__table__  # type: ignore[attr-defined]
        bodies_by_result = [evidence_json(r.evidence) for r in results]
        digests = [hashlib.sha256(b.encode()).hexdigest() for b in bodies_by_result]
        evidence_ids = self._evidence_ids_for(conn, dict(zip(digests, bodies_by_result,
                                                             strict=True)))
        keys = {(r.check, r.target.name) for r in results}
        states = self._state_map(conn, keys)
        live = self._existing_result_ids(
            conn, [st["result_id"] for st in states.values() if st["result_id"] is not None])

        extend: list[dict[str, Any]] = []
        fresh: list[tuple[Result, dict[str, Any]]] = []
        for r, digest in zip(results, digests, strict=True):
            st = states.get((r.check, r.target.name))
            evidence_id = evidence_ids[digest]
            if (st is not None and st["status"] == str(r.status) and st["summary"] == r.summary
                    and st["evidence_id"] == evidence_id and st["result_id"] in live):
                extend.append({"rid": st["result_id"], "at": r.at, "d": r.duration_ms,
                               "sweep": sweep_id})
            else:
                fresh.append((r, {
                    "check_id": r.check, "target": r.target.name,
                    "target_kind": str(r.target.kind), "family": r.family,
                    "status": str(r.status), "summary": r.summary, "evidence_id": evidence_id,
                    "first_at": r.at, "last_at": r.at, "count": 1,
                    "duration_ms_last": r.duration_ms, "duration_ms_max": r.duration_ms,
                    "duration_ms_sum": r.duration_ms, "sweep_first": sweep_id,
                    "sweep_last": sweep_id}))
        if extend:
            d: Any = bindparam("d")
            conn.execute(
                sa_update(res_t).where(res_t.c.id == bindparam("rid")).values(
                    count=res_t.c.count + 1, last_at=bindparam("at"), duration_ms_last=d,
                    duration_ms_max=case((res_t.c.duration_ms_max < d, d),
                                         else_=res_t.c.duration_ms_max),
                    duration_ms_sum=res_t.c.duration_ms_sum + d,
                    sweep_last=bindparam("sweep")),
                extend)
        new_ids: dict[tuple[str, str], int] = {}
        if fresh:
            rows = conn.execute(
                sa_insert(res_t).returning(res_t.c.id, res_t.c.check_id, res_t.c.target,
                                           sort_by_parameter_order=True),
                [values for _r, values in fresh])
            for row_id, check_id, target in rows:
                new_ids[(check_id, target)] = row_id

        state_new: list[dict[str, Any]] = []
        state_upd: list[dict[str, Any]] = []
        flip_rows: list[dict[str, Any]] = []
        flips: list[Flip] = []
        for r, digest in zip(results, digests, strict=True):
            key = (r.check, r.target.name)
            st = states.get(key)
            status = str(r.status)
            result_id = new_ids.get(key, st["result_id"] if st is not None else None)
            values = {"k_check": r.check, "k_target": r.target.name,
                      "target_kind": str(r.target.kind), "family": r.family, "status": status,
                      "summary": r.summary, "last_at": r.at, "duration_ms": r.duration_ms,
                      "result_id": result_id, "evidence_id": evidence_ids[digest],
                      "tags": json.dumps(list(r.target.tags))}
            flip: Flip | None = None
            if st is None:
                flip = Flip(r.check, r.target.name, None, r.status, r.summary, r.at)
                state_new.append({**values, "since": r.at, "streak": 1})
            else:
                if st["status"] != status:
                    flip = Flip(r.check, r.target.name, Status(st["status"]), r.status,
                                r.summary, r.at)
                    since, streak = r.at, 1
                else:
                    since, streak = st["since"], st["streak"] + 1
                state_upd.append({**values, "since": since, "streak": streak})
            if flip is not None:
                flips.append(flip)
                flip_rows.append({"check_id": flip.check, "target": flip.target, "at": flip.at,
                                  "old": str(flip.old) if flip.old else None,
                                  "new": str(flip.new), "reason": flip.reason[:2000]})
        if state_new:
            conn.execute(sa_insert(st_t), [
                {("check_id" if k == "k_check" else "target" if k == "k_target" else k): v
                 for k, v in row.items()} for row in state_new])
        if state_upd:
            conn.execute(
                sa_update(st_t)
                .where(st_t.c.check_id == bindparam("k_check"),
                       st_t.c.target == bindparam("k_target"))
                .values({c: bindparam(c) for c in (
                    "target_kind", "family", "status", "summary", "since", "last_at",
                    "duration_ms", "result_id", "evidence_id", "streak", "tags")}),
                state_upd)
        if flip_rows:
            conn.execute(sa_insert(flip_t), flip_rows)
        return flips

    def _state_map(self, conn: Connection, keys: set[tuple[str, str]]
                   ) -> dict[tuple[str, str], dict[str, Any]]:
        st_t = StateRow.__table__  # type: ignore[attr-defined]
        out: dict[tuple[str, str], dict[str, Any]] = {}
        checks = sorted({k[0] for k in keys})
        for chunk in _chunks(sorted({k[1] for k in keys}), 500):
            stmt = sa_select(st_t.c.check_id, st_t.c.target, st_t.c.status, st_t.c.summary,
                             st_t.c.since, st_t.c.result_id, st_t.c.evidence_id,
                             st_t.c.streak).where(st_t.c.check_id.in_(checks),
                                                  st_t.c.target.in_(chunk))
            for row in conn.execute(stmt).mappings():
                key = (row["check_id"], row["target"])
                if key in keys:
                    out[key] = dict(row)
        return out

    def _existing_result_ids(self, conn: Connection, ids: list[int]) -> set[int]:
        """Which streak rows still exist (retention may have folded an old one away)."""
        res_t = ResultRow.__table__  # type: ignore[attr-defined]
        out: set[int] = set()
        for chunk in _chunks(sorted(set(ids)), 500):
            out.update(conn.execute(sa_select(res_t.c.id).where(res_t.c.id.in_(chunk))
                                    ).scalars())
        return out

    def forget_evidence_ids(self) -> None:
        """Drop the evidence id memo (retention collected bodies). Swapped, not cleared, so a
        batch being recorded in another thread keeps a consistent view."""
        self._evidence_ids = {}

    # -- reads ------------------------------------------------------------------------------

    def current(self) -> list[StateRow]:
        with Session(self.engine) as s:
            return list(s.exec(select(StateRow)).all())

    def history(self, check_id: str, target: str, since: dt.datetime | None = None
                ) -> list[ResultRow]:
        """The pair's history, oldest first: rolled-up days (see `spans`), then raw streaks."""
        return self.spans([target], since=since, check_id=check_id)

    def spans(self, targets: Iterable[str], since: dt.datetime | None = None,
              until: dt.datetime | None = None, check_id: str | None = None
              ) -> list[ResultRow]:
        """History of these targets overlapping [since, until), as `ResultRow`s, oldest first.

        Raw streaks come as stored. A rolled-up day (older than the raw retention) comes as one
        unsaved row (id None) per status seen that day, spanning the day's first..last probe,
        with that status's exact probe count; the status the day ended with comes last and
        carries the day's last summary and evidence. So counting (uptime), "latest verdict" and
        "status at a time" read both kinds alike; they are exact per day, and within one
        rolled-up day probes are taken as evenly spread (as for a streak crossing a boundary).
        Each streak is either raw or rolled up, never both, so nothing counts twice.
        """
        names = sorted(set(targets))
        if not names:
            return []
        out: list[tuple[tuple[dt.datetime, int], ResultRow]] = []
        with Session(self.engine) as s:
            for chunk in _chunks(names, 500):
                rq = select(RollupRow).where(col(RollupRow.target).in_(chunk))
                q = select(ResultRow).where(col(ResultRow.target).in_(chunk))
                if check_id is not None:
                    rq = rq.where(RollupRow.check_id == check_id)
                    q = q.where(ResultRow.check_id == check_id)
                if since is not None:
                    rq = rq.where(col(RollupRow.last_at) >= since)
                    q = q.where(col(ResultRow.last_at) >= since)
                if until is not None:
                    rq = rq.where(col(RollupRow.first_at) < until)
                    q = q.where(col(ResultRow.first_at) < until)
                for day in s.exec(rq).all():
                    for order, row in enumerate(rollup_as_rows(day)):
                        out.append(((_aware(row.first_at), order), row))
                for row in s.exec(q).all():
                    out.append(((_aware(row.first_at), 10 + (row.id or 0)), row))
        out.sort(key=lambda pair: pair[0])
        return [row for _key, row in out]

    def rollups(self, target: str | None = None) -> list[RollupRow]:
        with Session(self.engine) as s:
            q = select(RollupRow)
            if target is not None:
                q = q.where(RollupRow.target == target)
            return list(s.exec(q.order_by(col(RollupRow.target), col(RollupRow.check_id),
                                          col(RollupRow.day))).all())

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
        """How many probe results the history holds (raw streak counts and rolled-up days)."""
        with Session(self.engine) as s:
            value = s.exec(text("SELECT COALESCE(SUM(count), 0) FROM result")).one()  # type: ignore[call-overload]
            days = s.exec(text("SELECT COALESCE(SUM(ok + warn + fail + error), 0) "  # type: ignore[call-overload]
                               "FROM result_day")).one()
            return int(value[0]) + int(days[0])

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, busy_ms: int) -> None:
    cur = dbapi_conn.cursor()
    # Takes effect only on a new, empty file (before step 1 creates tables): retention's freed
    # pages can then go back to the file system (`PRAGMA incremental_vacuum` after a prune). An
    # older file keeps its mode until `watchtower store prune --vacuum` rebuilds it.
    cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def rollup_as_rows(day: RollupRow) -> list[ResultRow]:
    """A rolled-up day as unsaved `ResultRow`s: one per status seen, the day's last one last."""
    present = [st for st in ("ok", "warn", "error", "fail") if getattr(day, st) > 0]
    present.sort(key=lambda st: st == day.last_status)
    total = day.probes or 1
    rows = []
    for st in present:
        n = int(getattr(day, st))
        last = st == day.last_status
        rows.append(ResultRow(
            check_id=day.check_id, target=day.target, target_kind=day.target_kind,
            family=day.family, status=st,
            summary=day.last_summary if last else f"{n} {st} probe(s) on {day.day} (rolled up)",
            evidence_id=day.last_evidence_id if last else None, first_at=day.first_at,
            last_at=day.last_at, count=n, duration_ms_last=day.duration_ms_sum / total,
            duration_ms_max=day.duration_ms_max, duration_ms_sum=day.duration_ms_sum * n / total))
    return rows


def status_counts(statuses: Iterable[str]) -> dict[Status, int]:
    counts: dict[Status, int] = {}
    for value in statuses:
        st = Status(value)
        counts[st] = counts.get(st, 0) + 1
    return counts


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _unique_pairs(results: Sequence[Result]) -> Iterator[list[Result]]:
    """Slices of the batch in which each (check, target) appears at most once."""
    part: list[Result] = []
    seen: set[tuple[str, str]] = set()
    for r in results:
        key = (r.check, r.target.name)
        if key in seen:
            yield part
            part, seen = [], set()
        part.append(r)
        seen.add(key)
    if part:
        yield part


def aware(value: dt.datetime) -> dt.datetime:
    return _aware(value)
