"""The `explanation` table (schema version 9): comply-or-explain records, kept for audit.

Rows are never deleted or edited: recording is an insert naming who and when; revoking sets
`revoked_at`/`revoked_by`/`revoke_reason` on a row still in force. So the table is its own
audit trail of who excused what, why, until when, and who withdrew it (the dashboard also
writes its `dashboard_audit` row, with the signed-in user's role, for each of these actions).
Expiry needs no write: an explanation past its `until` simply stops applying
(watchtower/compliance/explanations.py judges validity per day).
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

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
