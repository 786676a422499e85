"""The `report` table (schema version 4): every compliance report built, with its delivery state.

Why this shape: a report is evidence handed to a customer or an auditor, so what was sent must
be kept exactly as sent (JSON body, HTML, text and PDF bytes), not rebuilt later from a store
that has moved on. Delivery is an outbox in the same row: `state` is `pending` until the SMTP
relay accepted the message (`sent`), or `failed` when retrying cannot help. A worker claims a
pending row with a compare-and-set lease (`claimed_until`), so two workers never send the same
report, and marks it `sent` only after the relay said 250: a failed send stays visible (attempts,
last_error) and is retried with backoff, never silently lost.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

REPORT_TABLES = ("report",)

#: Delivery states: `draft` (built on demand, not meant to be mailed), `pending`, `sent`, `failed`.
DELIVERY_STATES = ("draft", "pending", "sent", "failed")


class ReportRow(SQLModel, table=True):
    __tablename__ = "report"
    __table_args__ = (Index("ix_report_due", "state", "next_attempt_at"),
                      Index("ix_report_name_customer", "name", "customer", "created_at"))
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    customer: str | None = Field(default=None, max_length=200)
    period_start: dt.datetime
    period_end: dt.datetime
    created_at: dt.datetime
    score: int | None = None
    body_json: str
    html: str
    text: str
    pdf: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    recipients: str = "[]"  # JSON list
    formats: str = '["html", "text", "json", "pdf"]'  # JSON list: the parts mailed
    channel: str | None = Field(default=None, max_length=100)
    message_id: str | None = Field(default=None, max_length=300)
    state: str = Field(default="draft", max_length=10)
    attempts: int = 0
    next_attempt_at: dt.datetime | None = None
    claimed_until: dt.datetime | None = None
    last_error: str | None = None
    sent_at: dt.datetime | None = None
