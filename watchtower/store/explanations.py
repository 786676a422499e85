"""The explanations table (schema version 9): comply-or-explain records, kept for audit.

Rows are never deleted or edited: recording is an insert naming who and when; revoking sets
`revoked_at`/`revoked_by`/`revoke_reason` on a row still in force. So the table is its own
audit trail of who excused what, why, until when, and who withdrew it (the dashboard also
writes its `dashboard_audit` row, with the signed-in user's role, for each of these actions).
Expiry needs no write: an explanation past its `until` simply stops applying
(`watchtower.compliance.explanations.Explanation.valid_on`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from watchtower.compliance.explanations import Explanation, ExplanationError, validate

EXPLANATION_TABLES = ("explanation",)


class ExplanationRow(SQLModel, table=True):
    __tablename__ = "explanation"
    id: int | None = Field(default=None, primary_key=True)
    domain: str = Field(max_length=253, index=True)
    criterion: str = Field(max_length=100)
    who: str = Field(max_length=200)
    why: str = Field(max_length=4000)
    until: dt.date
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=200)
    revoke_reason: str = Field(default="", max_length=4000)

    def explanation(self) -> Explanation:
        return Explanation(self.domain, self.criterion, self.who, self.why, self.until,
                           self.id, self.created_at)


def record(engine: Engine, domain: str, criterion: str, who: str, why: str, until: dt.date, *,
           now: dt.datetime, check_ids: Iterable[str]) -> ExplanationRow:
    """Validate and store a new explanation (ExplanationError says what is wrong)."""
    e = validate(domain, criterion, who, why, until, today=now.date(), check_ids=check_ids)
    row = ExplanationRow(domain=e.domain, criterion=e.criterion, who=e.who, why=e.why,
                         until=e.until, created_at=now)
    with Session(engine) as s:
        s.add(row)
        s.commit()
        s.refresh(row)
    return row


def revoke(engine: Engine, explanation_id: int, who: str, reason: str, *, now: dt.datetime
           ) -> ExplanationRow:
    """Withdraw an explanation still in force; the row stays, marked with who and why."""
    if not who.strip():
        raise ExplanationError("who: a revocation names the person withdrawing it")
    with Session(engine) as s:
        row = s.get(ExplanationRow, explanation_id)
        if row is None:
            raise ExplanationError(f"id: no explanation #{explanation_id}")
        if row.revoked_at is not None:
            raise ExplanationError(f"id: #{explanation_id} was revoked on "
                                   f"{row.revoked_at:%Y-%m-%d} by {row.revoked_by}")
        row.revoked_at, row.revoked_by, row.revoke_reason = now, who.strip(), reason[:4000]
        s.add(row)
        s.commit()
        s.refresh(row)
    return row


def rows(engine: Engine, *, domain: str | None = None, include_revoked: bool = False
         ) -> list[ExplanationRow]:
    """Explanations, newest first (revoked ones too with include_revoked: the audit view)."""
    with Session(engine) as s:
        q = select(ExplanationRow)
        if domain is not None:
            q = q.where(ExplanationRow.domain == domain.lower().rstrip("."))
        if not include_revoked:
            q = q.where(col(ExplanationRow.revoked_at).is_(None))
        return list(s.exec(q.order_by(col(ExplanationRow.created_at).desc(),
                                      col(ExplanationRow.id).desc())).all())


def in_force(engine: Engine) -> list[Explanation]:
    """Every explanation not revoked (expired ones too: validity is judged per day)."""
    return [r.explanation() for r in rows(engine)]
