"""Retention: raw streaks for `history_raw_days`, then one row per (check, target, UTC day).

Why this shape (as Uptime Kuma's daily stats or a Prometheus recording rule would keep it):
the dashboard's 30-day timeline and the reports' uptime need per-day counts, not every
5-minute status change of a flapping check a month ago. Raw streaks cost a row per change; a
pair that flaps 14 times a day costs 14 rows a day raw and 1 rolled up, while a stable pair
costs nothing either way (its one ongoing streak stays raw).

A streak is folded when it ended before the cutoff (the start of the UTC day `raw_days` ago).
Its probes are spread over the days it covered (evenly, as they were taken on a schedule;
exact when a streak lies within one day) and added to that day's `RollupRow`: counts per
status and of answered / unanswered availability probes, worst status, status changes (the flip
rows that started folded streaks are counted, then deleted), the verdict at the day's end.
Streaks of ad-hoc runs (`watchtower check`, verifications) are deleted instead of folded: no
figure counts them, and a day's rollup holds the scheduled probes only. Rollups older than
`rollup_days` are deleted, as are finished sweeps older than the cutoff. Evidence no longer
named by a streak, a state or a rollup is then garbage-collected, and SQLite gives freed pages
back (`incremental_vacuum`).

Crash safety: pairs are folded in chunks, each one transaction that writes the rollups *and*
deletes the streaks and flips it folded. A crash loses no history and counts nothing twice;
the next run carries on with the pairs left. Running it again at once changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from watchtower.model import Status, utcnow
from watchtower.store.db import Database, aware
from watchtower.store.tables.core import DAY, EV, FLIP, RES, STATE, SWEEP

if TYPE_CHECKING:
    from watchtower.store.facade import Store

log = logging.getLogger(__name__)

STATUSES = ("ok", "warn", "error", "fail")


@dataclass(frozen=True, slots=True)
class Policy:
    raw_days: int = 3
    rollup_days: int = 400

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        return cls(settings.raw_days, settings.rollup_days)


@dataclass(slots=True)
class PruneReport:
    cutoff: dt.datetime
    streaks_folded: int = 0
    days_written: int = 0
    flips_deleted: int = 0
    rollups_deleted: int = 0
    sweeps_deleted: int = 0
    evidence_deleted: int = 0
    pages_freed: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"cutoff {self.cutoff:%Y-%m-%d %H:%M}Z: {self.streaks_folded} streaks folded "
                f"into {self.days_written} day rows, {self.flips_deleted} flips, "
                f"{self.rollups_deleted} expired day rows, {self.sweeps_deleted} sweeps, "
                f"{self.evidence_deleted} evidence bodies removed, {self.pages_freed} pages "
                f"freed, in {self.seconds:.1f}s" + "".join(f"; {n}" for n in self.notes))


def day_start(at: dt.datetime) -> dt.datetime:
    at = aware(at)
    return dt.datetime(at.year, at.month, at.day, tzinfo=dt.UTC)


def cutoff_for(policy: Policy, now: dt.datetime) -> dt.datetime:
    return day_start(now) - dt.timedelta(days=policy.raw_days)


def split_by_day(first: dt.datetime, last: dt.datetime, count: int
                 ) -> list[tuple[dt.date, int, dt.datetime, dt.datetime]]:
    """(day, probes, first, last) of a streak's probes per UTC day, probes taken as evenly
    spaced between its exact first and last times; the parts always add up to `count`."""
    first, last = aware(first), aware(last)
    if count <= 1 or last <= first or day_start(first) == day_start(last):
        return [(first.date(), count, first, last)]
    step = (last - first).total_seconds() / (count - 1)
    out = []
    start = day_start(first)
    while start <= last:
        end = start + dt.timedelta(days=1)
        lo = max(0, math.ceil((start - first).total_seconds() / step))
        hi = min(count - 1, math.ceil((end - first).total_seconds() / step) - 1)
        if hi >= lo:
            out.append((start.date(), hi - lo + 1,
                        first + dt.timedelta(seconds=lo * step) if lo else first,
                        last if hi == count - 1 else first + dt.timedelta(seconds=hi * step)))
        start = end
    return out


def _rank(status: str) -> int:
    try:
        return Status(status).rank
    except ValueError:
        return Status.ERROR.rank


def prune(store: Store, policy: Policy, now: dt.datetime | None = None, *,
          chunk_pairs: int = 500, vacuum: bool = False) -> PruneReport:
    """Apply the retention policy once (the scheduler's daily job, `watchtower store prune`)."""
    t0 = time.monotonic()
    now = now or utcnow()
    cutoff = cutoff_for(policy, now)
    report = PruneReport(cutoff)
    db = store.db
    with db.engine.connect() as conn:
        pairs = sorted({(c, t) for c, t in conn.execute(
            select(RES.c.check_id, RES.c.target).where(RES.c.last_at < cutoff).distinct())})
    for k in range(0, len(pairs), chunk_pairs):
        chunk = pairs[k:k + chunk_pairs]
        db.retry(lambda chunk=chunk: _fold_chunk(db, chunk, cutoff, report))  # type: ignore[misc]
    db.retry(lambda: _expire(db, policy, now, cutoff, report))
    _collect_evidence(db, report)
    store.forget_evidence_ids()
    _give_back_pages(db, report, vacuum)
    report.seconds = time.monotonic() - t0
    log.info("retention: %s", report.line())
    return report


def _pair_filter(table: Any, chunk: Sequence[tuple[str, str]]) -> Any:
    return and_(table.c.check_id.in_(sorted({c for c, _ in chunk})),
                table.c.target.in_(sorted({t for _, t in chunk})))


Day = dict[str, Any]
DayKey = tuple[str, str, dt.date]


def _fold_chunk(db: Database, chunk: Sequence[tuple[str, str]], cutoff: dt.datetime,
                report: PruneReport) -> None:
    wanted = set(chunk)
    with db.engine.begin() as conn:
        streaks = [r for r in conn.execute(
            select(RES).where(_pair_filter(RES, chunk), RES.c.last_at < cutoff)
            .order_by(RES.c.first_at, RES.c.id)).mappings()
            if (r["check_id"], r["target"]) in wanted]
        if not streaks:
            return
        flips: dict[tuple[str, str, dt.datetime], tuple[int, str | None]] = {}
        for f in conn.execute(select(FLIP.c.id, FLIP.c.check_id, FLIP.c.target, FLIP.c.at,
                                     FLIP.c.old).where(_pair_filter(FLIP, chunk),
                                                       FLIP.c.at < cutoff)):
            flips[(f.check_id, f.target, aware(f.at))] = (f.id, f.old)
        first_day = min(aware(s["first_at"]).date() for s in streaks)
        days: dict[DayKey, Day] = {}
        for row in conn.execute(select(DAY).where(_pair_filter(DAY, chunk),
                                                  DAY.c.day >= first_day)).mappings():
            days[(row["check_id"], row["target"], row["day"])] = dict(row)
        flip_ids: list[int] = []
        for s in streaks:
            flip = flips.get((s["check_id"], s["target"], aware(s["first_at"])))
            if not s["adhoc"]:  # ad-hoc streaks are dropped, not rolled up
                _fold_streak(days, s, flip)
            if flip is not None:
                flip_ids.append(flip[0])
        changed = _write_days(conn, days)
        ids = [s["id"] for s in streaks]
        for k in range(0, len(ids), 500):
            conn.execute(delete(RES).where(RES.c.id.in_(ids[k:k + 500])))
        for k in range(0, len(flip_ids), 500):
            conn.execute(delete(FLIP).where(FLIP.c.id.in_(flip_ids[k:k + 500])))
    # counted only once the transaction committed (a retried chunk must not count twice)
    report.streaks_folded += len(streaks)
    report.days_written += changed
    report.flips_deleted += len(flip_ids)


def _fold_streak(days: dict[DayKey, Day], s: Any, flip: tuple[int, str | None] | None) -> None:
    """Add one streak's probes to the day rows it covers (creating them); the flip that started
    it counts as a status change of its first day (unless it was the first result seen)."""
    pair = (s["check_id"], s["target"])
    status = s["status"] if s["status"] in STATUSES else "error"
    for i, (day, n, first, last) in enumerate(split_by_day(s["first_at"], s["last_at"],
                                                           s["count"])):
        d = days.get((*pair, day))
        if d is None:
            d = days[(*pair, day)] = {
                "id": None, "check_id": pair[0], "target": pair[1],
                "target_kind": s["target_kind"], "family": s["family"], "day": day,
                "first_at": first, "last_at": last, "ok": 0, "warn": 0, "fail": 0,
                "error": 0, "worst": s["status"], "flips": 0, "streaks": 0,
                "last_status": s["status"], "last_summary": s["summary"],
                "last_evidence_id": s["evidence_id"], "duration_ms_sum": 0.0,
                "duration_ms_max": 0.0, "answered": 0, "unanswered": 0}
        d[status] += n
        if s["answered"] is not None:
            d["answered" if s["answered"] else "unanswered"] += n
        d["streaks"] += 1
        d["first_at"] = min(aware(d["first_at"]), first)
        if last >= aware(d["last_at"]):
            d["last_at"] = last
            d["last_status"], d["last_summary"] = s["status"], s["summary"]
            d["last_evidence_id"] = s["evidence_id"]
        if _rank(s["status"]) > _rank(d["worst"]):
            d["worst"] = s["status"]
        d["duration_ms_sum"] += s["duration_ms_sum"] * n / max(1, s["count"])
        d["duration_ms_max"] = max(d["duration_ms_max"], s["duration_ms_max"])
        d["dirty"] = True
        if i == 0 and flip is not None and flip[1] is not None:
            d["flips"] += 1


def _write_days(conn: Any, days: dict[DayKey, Day]) -> int:
    """Insert the new day rows and update the changed ones; returns how many were written."""
    changed = [d for d in days.values() if d.pop("dirty", False)]
    cols = [c.name for c in DAY.columns if c.name != "id"]
    fresh = [{c: d[c] for c in cols} for d in changed if d["id"] is None]
    if fresh:
        conn.execute(insert(DAY), fresh)
    old = [{**{c: d[c] for c in cols}, "rid": d["id"]} for d in changed if d["id"] is not None]
    if old:
        conn.execute(update(DAY).where(DAY.c.id == bindparam("rid"))
                     .values({c: bindparam(c) for c in cols}), old)
    return len(changed)


def _expire(db: Database, policy: Policy, now: dt.datetime, cutoff: dt.datetime,
            report: PruneReport) -> None:
    oldest_day = day_start(now).date() - dt.timedelta(days=policy.rollup_days)
    with db.engine.begin() as conn:
        rollups = conn.execute(delete(DAY).where(DAY.c.day < oldest_day)).rowcount
        # Flips of streaks folded are gone already; these are strays older than any history.
        flips = conn.execute(delete(FLIP).where(
            FLIP.c.at < day_start(now) - dt.timedelta(days=policy.rollup_days))).rowcount
        sweeps = conn.execute(delete(SWEEP).where(SWEEP.c.started_at < cutoff,
                                                  SWEEP.c.state != "running")).rowcount
    report.rollups_deleted += max(0, rollups or 0)
    report.flips_deleted += max(0, flips or 0)
    report.sweeps_deleted += max(0, sweeps or 0)


def _collect_evidence(db: Database, report: PruneReport) -> None:
    """Delete evidence no streak, state or rollup names. Its own transaction: on PostgreSQL a
    writer may reference a body at the same moment; the foreign key then refuses the delete
    and the next run tries again."""
    unreferenced = and_(
        EV.c.id.not_in(select(RES.c.evidence_id).where(RES.c.evidence_id.is_not(None))),
        EV.c.id.not_in(select(STATE.c.evidence_id).where(STATE.c.evidence_id.is_not(None))),
        EV.c.id.not_in(select(DAY.c.last_evidence_id)
                       .where(DAY.c.last_evidence_id.is_not(None))))
    sqlite = db.engine.dialect.name == "sqlite"
    try:
        with db.engine.connect() as conn:
            if sqlite:
                # The check above is the foreign key's; SQLite would repeat it per deleted row
                # by scanning `result` (evidence_id is indexed on PostgreSQL only). Writers are
                # serialised on SQLite, so nothing can start referencing a body meanwhile.
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                conn.commit()
            try:
                with conn.begin():
                    report.evidence_deleted += max(
                        0, conn.execute(delete(EV).where(unreferenced)).rowcount or 0)
            finally:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()
    except IntegrityError as exc:
        report.notes.append(f"evidence collection deferred ({exc.orig})")


def _give_back_pages(db: Database, report: PruneReport, vacuum: bool) -> None:
    if db.engine.dialect.name != "sqlite":
        return  # PostgreSQL: autovacuum reuses the space
    with db.engine.connect() as conn:
        free = conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0
        mode = conn.exec_driver_sql("PRAGMA auto_vacuum").scalar()
        if vacuum:
            conn.exec_driver_sql("PRAGMA auto_vacuum=INCREMENTAL")
            conn.exec_driver_sql("VACUUM")
            report.pages_freed = int(free)
        elif mode == 2:  # incremental
            # It frees one page per step, and sqlite3's execute() steps once; executescript()
            # runs it to the end.
            conn.commit()
            conn.connection.dbapi_connection.executescript(  # type: ignore[union-attr]
                "PRAGMA incremental_vacuum;")
            report.pages_freed = int(free)
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))

