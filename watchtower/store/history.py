"""The one history reader: raw streaks and rolled-up days of some targets over a time range.

History comes in two kinds (watchtower/store/tables/history.py): streaks as recorded, for the
raw window, and one `result_day` row per (check, target, day) before it (written by
watchtower/store/retention.py). Every reader of history goes through `Store.read_history`, which
reads both with one filter, so the report (uptime, latest verdicts, baselines), the dashboard's
timeline and the compliance trend cannot disagree on which history exists. What they differ in is
how they present a rolled-up day, and that is a view of the same `History`:
- `History.spans()`: a day as one row per status seen (exact counts), the status it ended with
  last; reports count these like streaks;
- the dashboard draws a day as one span with its worst status (dashboards/data.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from watchtower.store.db import Database, aware, chunks
from watchtower.store.tables import ResultRow, RollupRow

STATUS_ORDER = ("ok", "warn", "error", "fail")  # a rolled-up day's rows, before its last status


@dataclass(slots=True)
class History:
    """Streaks and rolled-up days overlapping a range; each list oldest first (first_at, id).
    Each streak is either raw or rolled up, never both, so nothing counts twice."""

    streaks: list[ResultRow] = field(default_factory=list)
    days: list[RollupRow] = field(default_factory=list)

    def spans(self) -> list[ResultRow]:
        """Both kinds as `ResultRow`s, oldest first: a rolled-up day as unsaved rows (id None),
        one per status seen that day, spanning the day's first..last probe with that status's
        exact probe count; the status the day ended with comes last and carries the day's last
        summary and evidence. So counting (uptime), "latest verdict" and "status at a time" read
        both kinds alike; exact per day, and within one rolled-up day probes are taken as
        evenly spread (as for a streak crossing a boundary)."""
        keyed: list[tuple[tuple[dt.datetime, int], ResultRow]] = []
        for day in self.days:
            for order, row in enumerate(rollup_as_rows(day)):
                keyed.append(((aware(row.first_at), order), row))
        for row in self.streaks:
            keyed.append(((aware(row.first_at), 10 + (row.id or 0)), row))
        keyed.sort(key=lambda pair: pair[0])
        return [row for _key, row in keyed]


    def answer_spans(self) -> list[ResultRow]:
        """The probes of availability signals, oldest first, as `ResultRow`s whose `answered`
        is set and whose `count` is how many probes it holds: each raw streak of a signal as
        it is, a rolled-up day as one unsaved row of its answered probes and one of the others
        (spanning the day). What the report's availability counts."""
        keyed: list[tuple[tuple[dt.datetime, int], ResultRow]] = []
        for day in self.days:
            for order, (answered, n) in enumerate(((True, day.answered),
                                                   (False, day.unanswered))):
                if n > 0:
                    keyed.append(((aware(day.first_at), order), ResultRow(
                        check_id=day.check_id, target=day.target, target_kind=day.target_kind,
                        family=day.family, status=day.last_status, summary=day.last_summary,
                        first_at=day.first_at, last_at=day.last_at, count=n,
                        answered=answered)))
        for row in self.streaks:
            if row.answered is not None:
                keyed.append(((aware(row.first_at), 10 + (row.id or 0)), row))
        keyed.sort(key=lambda pair: pair[0])
        return [row for _key, row in keyed]


def rollup_as_rows(day: RollupRow) -> list[ResultRow]:
    """A rolled-up day as unsaved `ResultRow`s: one per status seen, the day's last one last."""
    present = [st for st in STATUS_ORDER if getattr(day, st) > 0]
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


def _filtered(q: Any, model: Any, targets: Sequence[str] | None, containing: str | None,
              check_id: str | None, since: dt.datetime | None, until: dt.datetime | None
              ) -> Any:
    """The one filter of history: targets, a name part, a check, overlap with [since, until)."""
    if targets is not None:
        q = q.where(col(model.target).in_(targets))
    if containing is not None:
        q = q.where(col(model.target).contains(containing))
    if check_id is not None:
        q = q.where(model.check_id == check_id)
    if since is not None:
        q = q.where(col(model.last_at) >= since)
    if until is not None:
        q = q.where(col(model.first_at) < until)
    return q


class HistoryReads:
    """The history reads of the `Store` (a mixin: needs `self.db`)."""

    db: Database

    def read_history(self, targets: Iterable[str] | None = None, *,
                     containing: str | None = None, since: dt.datetime | None = None,
                     until: dt.datetime | None = None, check_id: str | None = None,
                     include_adhoc: bool = True) -> History:
        """History overlapping [since, until) of the named targets, or of every target whose
        name contains `containing` (a domain: the caller checks what it really belongs to).
        `include_adhoc=False` leaves out the streaks of ad-hoc runs, as every figure over time
        does (rolled-up days hold scheduled probes only)."""
        if targets is None and containing is None:
            raise ValueError("read_history needs targets or containing")
        parts: list[Sequence[str] | None] = [None]
        if targets is not None:
            parts = list(chunks(sorted(set(targets))))
        out = History()
        with Session(self.db.engine) as s:
            for part in parts:
                for model, into in ((RollupRow, out.days), (ResultRow, out.streaks)):
                    q = _filtered(select(model), model, part, containing, check_id, since,
                                  until)
                    if model is ResultRow and not include_adhoc:
                        q = q.where(col(ResultRow.adhoc).is_(False))
                    into.extend(s.exec(q).all())
        out.days.sort(key=lambda d: (aware(d.first_at), d.id or 0))
        out.streaks.sort(key=lambda r: (aware(r.first_at), r.id or 0))
        return out

    def spans(self, targets: Iterable[str], since: dt.datetime | None = None,
              until: dt.datetime | None = None, check_id: str | None = None, *,
              include_adhoc: bool = True) -> list[ResultRow]:
        """History of these targets overlapping [since, until) as `ResultRow`s, oldest first
        (`History.spans`)."""
        return self.read_history(targets, since=since, until=until, check_id=check_id,
                                 include_adhoc=include_adhoc).spans()

    def history(self, check_id: str, target: str, since: dt.datetime | None = None
                ) -> list[ResultRow]:
        """The pair's history, oldest first: rolled-up days (see `spans`), then raw streaks."""
        return self.spans([target], since=since, check_id=check_id)

    def streak(self, result_id: int) -> ResultRow | None:
        """One raw streak by id (None when retention folded it away)."""
        with Session(self.db.engine) as s:
            return s.get(ResultRow, result_id)

    def rollups(self, target: str | None = None) -> list[RollupRow]:
        with Session(self.db.engine) as s:
            q = select(RollupRow)
            if target is not None:
                q = q.where(RollupRow.target == target)
            return list(s.exec(q.order_by(col(RollupRow.target), col(RollupRow.check_id),
                                          col(RollupRow.day))).all())

    def probes_stored(self) -> int:
        """How many probe results the history holds (raw streak counts and rolled-up days)."""
        with self.db.engine.connect() as conn:
            raw = conn.execute(text("SELECT COALESCE(SUM(count), 0) FROM result")).scalar()
            days = conn.execute(text("SELECT COALESCE(SUM(ok + warn + fail + error), 0) "
                                     "FROM result_day")).scalar()
            return int(raw or 0) + int(days or 0)
