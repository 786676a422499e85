"""Comply-or-explain records (`Store.explanations`): inserted, listed, marked revoked; never
deleted. What an explanation means, and whether one is valid, is watchtower/compliance's."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, col, select

from watchtower.store.db import Database
from watchtower.store.tables.explanations import ExplanationRow


class ExplanationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, domain: str, criterion: str, who: str, why: str, until: dt.date,
               at: dt.datetime) -> ExplanationRow:
        """Store an explanation (already validated by the caller)."""
        row = ExplanationRow(domain=domain, criterion=criterion, who=who, why=why, until=until,
                             created_at=at)

        def step() -> ExplanationRow:
            with Session(self.db.engine) as s:
                s.add(row)
                s.commit()
                s.refresh(row)
                return row

        return self.db.retry(step)

    def get(self, explanation_id: int) -> ExplanationRow | None:
        with Session(self.db.engine) as s:
            return s.get(ExplanationRow, explanation_id)

    def mark_revoked(self, explanation_id: int, who: str, reason: str, at: dt.datetime
                     ) -> ExplanationRow | None:
        """Mark a row still in force as revoked by `who`; None when there is no such row in
        force (missing, or revoked already)."""

        def step() -> ExplanationRow | None:
            with Session(self.db.engine) as s:
                row = s.get(ExplanationRow, explanation_id)
                if row is None or row.revoked_at is not None:
                    return None
                row.revoked_at, row.revoked_by, row.revoke_reason = at, who, reason[:4000]
                s.add(row)
                s.commit()
                s.refresh(row)
                return row

        return self.db.retry(step)

    def rows(self, *, domain: str | None = None, include_revoked: bool = False
             ) -> list[ExplanationRow]:
        """Explanations, newest first (revoked ones too with include_revoked: the audit view)."""
        with Session(self.db.engine) as s:
            q = select(ExplanationRow)
            if domain is not None:
                q = q.where(ExplanationRow.domain == domain.lower().rstrip("."))
            if not include_revoked:
                q = q.where(col(ExplanationRow.revoked_at).is_(None))
            return list(s.exec(q.order_by(col(ExplanationRow.created_at).desc(),
                                          col(ExplanationRow.id).desc())).all())
