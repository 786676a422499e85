"""What the dashboard reads and writes (`Store.dashboard`): small column queries over `state`,
`flip`, `sweep` and `check_gauge`, plus its own tables (acknowledgements, its audit trail).

Speed is a feature there: the overview must stay within two seconds at 1,000 domains x the full
catalog. So it reads only the `state` table (never the history), lets the database group it
(`GROUP BY target, family, status`: tens of thousands of states become a few thousand groups),
and returns plain tuples; column queries (not ORM objects) keep SQLAlchemy's per-row cost low
while still converting datetimes. dashboards/data.py assembles the pages from them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from watchtower.store.db import Database, aware
from watchtower.store.migrations import create_dashboard_tables
from watchtower.store.tables import (
    AcknowledgementRow,
    DashboardAuditRow,
    FlipRow,
    GaugeRow,
    StateRow,
    SweepRow,
)

Pair = tuple[str, str]


class StateLine(NamedTuple):
    """One state row's columns, without the ORM object."""

    check_id: str
    target: str
    target_kind: str
    family: str
    status: str
    summary: str
    since: dt.datetime
    evidence_id: int | None
    tags: str


STATE_LINE = (col(StateRow.check_id), col(StateRow.target), col(StateRow.target_kind),
              col(StateRow.family), col(StateRow.status), col(StateRow.summary),
              col(StateRow.since), col(StateRow.evidence_id), col(StateRow.tags))
FLIP_LINE = (col(FlipRow.at), col(FlipRow.target), col(FlipRow.check_id), col(FlipRow.old),
             col(FlipRow.new), col(FlipRow.reason))


class DashboardStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def ensure_tables(self) -> None:
        """Create the dashboard's tables when missing (safe at every start)."""
        create_dashboard_tables(self.db.engine)

    def _rows(self, q: Any) -> list[Any]:
        with self.db.engine.connect() as conn:
            return list(conn.execute(q))

    # -- state --------------------------------------------------------------------------------

    def state_groups(self) -> list[tuple[str, str, str, str, int, str | None]]:
        """(target, kind, family, status, how many, tags JSON) for every group of states (the
        database's rows as they come: tuples already, not copied)."""
        q = (sa_select(col(StateRow.target), col(StateRow.target_kind), col(StateRow.family),
                       col(StateRow.status), func.count(), func.max(StateRow.tags))
             .group_by(col(StateRow.target), col(StateRow.target_kind), col(StateRow.family),
                       col(StateRow.status)))
        return self._rows(q)

    def target_statuses(self) -> list[tuple[str, str, str]]:
        """(target, kind, status) for every status present on every target."""
        q = (sa_select(col(StateRow.target), col(StateRow.target_kind), col(StateRow.status))
             .group_by(col(StateRow.target), col(StateRow.target_kind), col(StateRow.status)))
        return [(str(t), str(k), str(s)) for t, k, s in self._rows(q)]

    def problem_states(self, statuses: Sequence[str], families: Sequence[str] = ()
                       ) -> list[StateLine]:
        """States in one of `statuses` (and of one of `families`, when given)."""
        q = sa_select(*STATE_LINE).where(col(StateRow.status).in_(list(statuses)))
        if families:
            q = q.where(col(StateRow.family).in_(list(families)))
        return [StateLine(*_aware_since(r)) for r in self._rows(q)]

    def states_of(self, checks: Sequence[str] = (), families: Sequence[str] = ()
                  ) -> list[StateLine]:
        """States of any of these checks or families."""
        q = sa_select(*STATE_LINE).where(or_(col(StateRow.check_id).in_(list(checks)),
                                             col(StateRow.family).in_(list(families))))
        return [StateLine(*_aware_since(r)) for r in self._rows(q)]

    def target_states(self, target: str, kind: str | None = None) -> list[StateRow]:
        q = select(StateRow).where(col(StateRow.target) == target)
        if kind is not None:
            q = q.where(col(StateRow.target_kind) == kind)
        with Session(self.db.engine) as s:
            return list(s.exec(q).all())

    # -- changes, gauges, sweeps ------------------------------------------------------------

    def flips_since(self, since: dt.datetime) -> list[tuple[Any, ...]]:
        """(at, target, check, old, new, reason) of every flip since `since`, newest first."""
        q = sa_select(*FLIP_LINE).where(col(FlipRow.at) >= since).order_by(col(FlipRow.at).desc())
        return [(aware(at), *rest) for at, *rest in self._rows(q)]

    def target_flips(self, target: str, limit: int) -> list[tuple[Any, ...]]:
        """(at, target, check, old, new, reason) of the target's latest flips, newest first."""
        q = (sa_select(*FLIP_LINE).where(col(FlipRow.target) == target)
             .order_by(col(FlipRow.at).desc()).limit(limit))
        return [(aware(at), *rest) for at, *rest in self._rows(q)]

    def target_gauges(self, target: str) -> list[tuple[str, str, float, dt.datetime]]:
        """(check, gauge, value, at) of the numeric gauges checks reported for the target."""
        q = (sa_select(col(GaugeRow.check_id), col(GaugeRow.name), col(GaugeRow.value),
                       col(GaugeRow.at)).where(col(GaugeRow.target) == target))
        return [(c, n, v, aware(at)) for c, n, v, at in self._rows(q)]

    def recent_sweeps(self, limit: int, kinds: Sequence[str] | None = None
                      ) -> list[dict[str, Any]]:
        """The latest sweeps (of these kinds: scheduled, adhoc, verify), newest first, with
        their counts."""
        q = sa_select(col(SweepRow.id), col(SweepRow.schedule), col(SweepRow.kind),
                      col(SweepRow.started_at), col(SweepRow.finished_at), col(SweepRow.state),
                      col(SweepRow.total), col(SweepRow.ok), col(SweepRow.warn),
                      col(SweepRow.fail), col(SweepRow.error))
        if kinds is not None:
            q = q.where(col(SweepRow.kind).in_(list(kinds)))
        q = q.order_by(col(SweepRow.id).desc()).limit(limit)
        return [{"id": i, "schedule": sch, "kind": kind, "started_at": aware(start),
                 "finished_at": aware(fin) if fin else None, "state": state, "total": total,
                 "ok": ok, "warn": warn, "fail": fail, "error": error}
                for i, sch, kind, start, fin, state, total, ok, warn, fail, error
                in self._rows(q)]

    def adhoc_states(self) -> int:
        """How many current states come from an ad-hoc run (`watchtower check`, a verification):
        what the dashboard says when its current view and the reports may differ."""
        q = sa_select(func.count()).select_from(StateRow).where(col(StateRow.adhoc).is_(True))
        return int(self._rows(q)[0][0])

    # -- acknowledgements -------------------------------------------------------------------

    def current_acks(self, keys: Sequence[Pair]) -> dict[Pair, AcknowledgementRow]:
        """Acknowledgements that still apply: same status and same episode (`since`) as now
        (an old "seen, working on it" never hides a new failure)."""
        if not keys:
            return {}
        wanted = set(keys)
        with Session(self.db.engine) as s:
            acks = [a for a in s.exec(select(AcknowledgementRow).where(
                col(AcknowledgementRow.check_id).in_(sorted({k[0] for k in keys})),
                col(AcknowledgementRow.target).in_(sorted({k[1] for k in keys})))
                .order_by(col(AcknowledgementRow.id))).all()
                if (a.check_id, a.target) in wanted]
            if not acks:  # the common case: nothing acknowledged, no second query
                return {}
            acked = {(a.check_id, a.target) for a in acks}
            states = {(st.check_id, st.target): st for st in s.exec(
                select(StateRow).where(
                    col(StateRow.check_id).in_(sorted({k[0] for k in acked})),
                    col(StateRow.target).in_(sorted({k[1] for k in acked})))).all()
                if (st.check_id, st.target) in acked}
        out: dict[Pair, AcknowledgementRow] = {}
        for ack in acks:
            st = states.get((ack.check_id, ack.target))
            if st is not None and st.status == ack.status and aware(st.since) == aware(ack.since):
                out[(ack.check_id, ack.target)] = ack
        return out

    def acknowledge(self, check_id: str, target: str, by: str, at: dt.datetime,
                    note: str = "") -> AcknowledgementRow:
        """Acknowledge the current episode of (check, target); LookupError without a state."""
        with Session(self.db.engine) as s:
            st = s.get(StateRow, (check_id, target))
            if st is None:
                raise LookupError(f"no state for {check_id} on {target}")
            row = AcknowledgementRow(check_id=check_id, target=target, status=st.status,
                                     since=aware(st.since), by=by, at=at, note=note[:1000])
            s.add(row)
            s.commit()
            s.refresh(row)
        return row

    # -- the audit of people's actions ------------------------------------------------------

    def audit(self, row: DashboardAuditRow) -> None:
        with Session(self.db.engine) as s:
            s.add(row)
            s.commit()

    def audit_trail(self, since: dt.datetime | None = None, limit: int = 500
                    ) -> list[DashboardAuditRow]:
        """The dashboard's audit rows, newest first."""
        with Session(self.db.engine) as s:
            q = select(DashboardAuditRow)
            if since is not None:
                q = q.where(col(DashboardAuditRow.at) >= since)
            return list(s.exec(q.order_by(col(DashboardAuditRow.id).desc()).limit(limit)).all())


def _aware_since(row: Any) -> tuple[Any, ...]:
    values = list(row)
    values[6] = aware(values[6])
    return tuple(values)
