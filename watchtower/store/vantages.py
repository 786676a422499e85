"""Probing from several vantages (`Store.vantages`): deferrals, what agents recorded, agent
heartbeats (tables: watchtower/store/tables/vantages.py; the engine: watchtower/scaleout).

A deferral is opened by the scheduler that wins the (group, tick) row (a second scheduler's
insert of the same tick does nothing); agents add their results; once every expected result
is in or its deadline passed, one scheduler claims its judging (`claim`), records the
combined verdicts through `Store.record` and closes it, which deletes its vantage results.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, inspect, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from watchtower.model import Result
from watchtower.store.db import Database, aware
from watchtower.store.results import evidence_json
from watchtower.store.tables import AgentRow, DeferralRow, VantageResultRow, VantageStateRow

DEFERRAL = DeferralRow.__table__  # type: ignore[attr-defined]
VRES = VantageResultRow.__table__  # type: ignore[attr-defined]
VSTATE = VantageStateRow.__table__  # type: ignore[attr-defined]
AGENT = AgentRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Deferral:
    group: str
    tick: int
    deadline: dt.datetime
    expected: int


@dataclass(frozen=True, slots=True)
class VantageReport:
    """One vantage's stored result of one pair in one tick."""

    vantage: str
    check_id: str
    family: str
    target: str
    target_kind: str
    status: str
    summary: str
    evidence: dict[str, Any]
    duration_ms: float
    at: dt.datetime


def conninfo(url: str) -> str:
    """The libpq connection string of a store URL (`postgresql+psycopg://...`), for the task
    engine's own connections; a SQLite store is refused with the reason."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError("the scale-out roles need a PostgreSQL [store] database "
                         f"(this one is {parsed.drivername})")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class VantageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _upsert(self) -> Any:
        return pg_insert if self.db.engine.dialect.name == "postgresql" else sqlite_insert

    # -- the scheduler ----------------------------------------------------------------------

    def open_deferral(self, group: str, tick: int, deadline: dt.datetime,
                      expected: int) -> bool:
        """Claim (group, tick); False when another scheduler already did."""

        def step() -> bool:
            try:
                with self.db.engine.begin() as conn:
                    conn.execute(insert(DEFERRAL).values(grp=group, tick=tick,
                                                         deadline=deadline, expected=expected))
            except IntegrityError:
                return False
            return True

        return self.db.retry(step)

    def due(self, now: dt.datetime) -> list[Deferral]:
        """Open deferrals whose expected results are all in, or whose deadline passed."""
        received = (select(func.count()).select_from(VRES)
                    .where(VRES.c.grp == DEFERRAL.c.grp, VRES.c.tick == DEFERRAL.c.tick)
                    .scalar_subquery())
        query = (select(DEFERRAL.c.grp, DEFERRAL.c.tick, DEFERRAL.c.deadline,
                        DEFERRAL.c.expected)
                 .where(~DEFERRAL.c.judged)
                 .where((DEFERRAL.c.deadline <= now) | (received >= DEFERRAL.c.expected))
                 .order_by(DEFERRAL.c.tick))
        with self.db.engine.connect() as conn:
            return [Deferral(r.grp, r.tick, aware(r.deadline), r.expected)
                    for r in conn.execute(query)]

    def reports(self, group: str, tick: int) -> list[VantageReport]:
        query = select(VRES).where(VRES.c.grp == group, VRES.c.tick == tick)
        with self.db.engine.connect() as conn:
            return [VantageReport(r.vantage, r.check_id, r.family, r.target, r.target_kind,
                                  r.status, r.summary, json.loads(r.evidence), r.duration_ms,
                                  aware(r.at))
                    for r in conn.execute(query)]

    def claim(self, group: str, tick: int) -> bool:
        """Take the judging of (group, tick): True for the one caller that marks it judged.
        Claimed before its verdicts are recorded, so a second scheduler, or this one after a
        crash between recording and closing, never records a tick twice (a crash in between
        loses that tick's combined verdicts: a gap, never a double count)."""

        def step() -> bool:
            with self.db.engine.begin() as conn:
                won = conn.execute(update(DEFERRAL).where(DEFERRAL.c.grp == group,
                                                          DEFERRAL.c.tick == tick,
                                                          ~DEFERRAL.c.judged)
                                   .values(judged=True))
                return bool(won.rowcount)

        return self.db.retry(step)

    def close(self, group: str, tick: int) -> None:
        """Judged and recorded: drop the deferral's vantage results (late ones included)."""

        def step() -> None:
            with self.db.engine.begin() as conn:
                conn.execute(update(DEFERRAL).where(DEFERRAL.c.grp == group,
                                                    DEFERRAL.c.tick == tick)
                             .values(judged=True))
                conn.execute(delete(VRES).where(VRES.c.grp == group, VRES.c.tick == tick))

        self.db.retry(step)

    def prune_deferrals(self, before: dt.datetime) -> int:
        """Judged deferrals older than `before` (kept a while: they are the dedup of ticks),
        with any vantage results a crash between claim and close left behind."""
        old = (select(DEFERRAL.c.grp, DEFERRAL.c.tick)
               .where(DEFERRAL.c.judged, DEFERRAL.c.deadline < before))
        with self.db.engine.begin() as conn:
            for grp, tick in conn.execute(old).all():
                conn.execute(delete(VRES).where(VRES.c.grp == grp, VRES.c.tick == tick))
            done = conn.execute(delete(DEFERRAL).where(DEFERRAL.c.judged,
                                                       DEFERRAL.c.deadline < before))
            return int(done.rowcount or 0)

    # -- agents -------------------------------------------------------------------------------

    def record(self, vantage: str, group: str, tick: int, results: Sequence[Result]) -> None:
        """One agent's results of one job: kept for the judge, and as the vantage's state."""
        if not results:
            return
        rows = [{"grp": group, "tick": tick, "vantage": vantage, "check_id": r.check,
                 "family": r.family, "target": r.target.name,
                 "target_kind": str(r.target.kind), "status": str(r.status),
                 "summary": r.summary, "evidence": evidence_json(r.evidence),
                 "duration_ms": r.duration_ms, "at": r.at} for r in results]
        states = [{k: row[k] for k in ("check_id", "target", "vantage", "family",
                                       "target_kind", "status", "at")} for row in rows]
        stmt = self._upsert()(VSTATE)
        stmt = stmt.on_conflict_do_update(
            index_elements=["check_id", "target", "vantage"],
            set_={"status": stmt.excluded.status, "at": stmt.excluded.at})

        def step() -> None:
            with self.db.engine.begin() as conn:
                conn.execute(insert(VRES), rows)
                conn.execute(stmt, states)

        self.db.retry(step)

    def agent_seen(self, name: str, vantage: str, at: dt.datetime) -> None:
        stmt = self._upsert()(AGENT).values(name=name, vantage=vantage, started_at=at,
                                            last_seen=at)
        stmt = stmt.on_conflict_do_update(index_elements=["name"],
                                          set_={"last_seen": at, "vantage": vantage})

        def step() -> None:
            with self.db.engine.begin() as conn:
                conn.execute(stmt)

        self.db.retry(step)

    def agent_gone(self, name: str) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(delete(AGENT).where(AGENT.c.name == name))

    def last_seen(self) -> dict[str, dt.datetime]:
        """Per vantage, the latest heartbeat of any of its agents."""
        query = select(AGENT.c.vantage, func.max(AGENT.c.last_seen)).group_by(AGENT.c.vantage)
        with self.db.engine.connect() as conn:
            return {v: aware(at) for v, at in conn.execute(query)}

    def states(self) -> list[tuple[str, str, str, str, str]]:
        """(check, target, target kind, vantage, status) of every pair per vantage."""
        query = select(VSTATE.c.check_id, VSTATE.c.target, VSTATE.c.target_kind,
                       VSTATE.c.vantage, VSTATE.c.status)
        with self.db.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]

    def engine_schema_present(self) -> bool:
        """Whether procrastinate's tables exist (watchtower/scaleout creates them once)."""
        return bool(inspect(self.db.engine).has_table("procrastinate_jobs"))
