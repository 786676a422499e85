"""Stored compliance reports and their delivery state (`Store.reports`).

Building and mailing live in watchtower/report/; this module keeps each report exactly as sent
and the outbox semantics of its row: `claim` is a compare-and-set lease (`claimed_until`), so two
workers never send the same report, and `save` writes the outcome of an attempt.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import and_, or_, update
from sqlmodel import Session, col, select

from watchtower.store.db import Database
from watchtower.store.tables import ReportRow


class ReportStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, row: ReportRow) -> ReportRow:
        """Keep a new report; returns it with its id."""
        with Session(self.db.engine) as s:
            s.add(row)
            s.commit()
            s.refresh(row)
        return row

    def get(self, report_id: int) -> ReportRow | None:
        with Session(self.db.engine) as s:
            return s.get(ReportRow, report_id)

    def save(self, row: ReportRow) -> None:
        """Write a changed report row (recipients, delivery outcome)."""
        with Session(self.db.engine) as s:
            s.merge(row)
            s.commit()

    def recent(self, *, customer: str | None = None, state: str | None = None,
             limit: int = 200) -> list[ReportRow]:
        """Stored reports, newest first."""
        with Session(self.db.engine) as s:
            q = select(ReportRow).order_by(col(ReportRow.created_at).desc(),
                                           col(ReportRow.id).desc()).limit(limit)
            if customer is not None:
                q = q.where(ReportRow.customer == customer)
            if state is not None:
                q = q.where(ReportRow.state == state)
            return list(s.exec(q).all())

    def previous(self, name: str, customer: str | None, until: dt.datetime) -> ReportRow | None:
        """The newest report of this name and customer stored for delivery by `until` (what
        the next one reports its changes against)."""
        with Session(self.db.engine) as s:
            q = (select(ReportRow).where(ReportRow.name == name, ReportRow.customer == customer,
                                         ReportRow.state != "draft",
                                         col(ReportRow.created_at) <= until)
                 .order_by(col(ReportRow.created_at).desc(), col(ReportRow.id).desc()).limit(1))
            return s.exec(q).first()

    def due(self, now: dt.datetime, limit: int) -> list[int]:
        """Ids of pending reports whose next attempt has come, oldest first."""
        with Session(self.db.engine) as s:
            q = (select(ReportRow.id)
                 .where(ReportRow.state == "pending", col(ReportRow.next_attempt_at) <= now)
                 .order_by(col(ReportRow.id)).limit(limit))
            return [i for i in s.exec(q).all() if i is not None]

    def claim(self, report_id: int, now: dt.datetime, lease: dt.timedelta,
              states: Sequence[str]) -> bool:
        """Compare-and-set lease on a report in one of `states` (it becomes `pending`): only
        the caller whose UPDATE changed the row sends it."""
        stmt = (update(ReportRow)
                .where(and_(col(ReportRow.id) == report_id, col(ReportRow.state).in_(states),
                            or_(col(ReportRow.claimed_until).is_(None),
                                col(ReportRow.claimed_until) < now)))
                .values(claimed_until=now + lease, state="pending"))
        with self.db.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1
