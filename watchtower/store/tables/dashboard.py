"""The dashboard's own two tables: acknowledgements and its audit trail.

Why separate tables: the dashboard writes only approvals (through the remediation engine, which
keeps its own audit) and acknowledgements; every action a person takes here — including refused
attempts, sign-ins and report requests — is one `dashboard_audit` row naming the user, so "who
did what from the dashboard" is one query.

An acknowledgement belongs to one *episode* of a problem: it records the state's `since` at the
time, and stops applying when the status changes (a new `since`). So an old "seen, working on
it" never hides a new failure.

The tables are created by the store's migration step 5 (idempotent, run again when the dashboard
opens the store: `Store.dashboard.ensure_tables`); they are plain additions that no other part
reads, so a store without them is still valid.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

DASHBOARD_TABLES = ("dashboard_audit", "acknowledgement")


class DashboardAuditRow(SQLModel, table=True):
    __tablename__ = "dashboard_audit"
    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(index=True)
    user: str = Field(max_length=200)
    source: str = Field(max_length=20)  # local | oidc
    role: str = Field(max_length=20)
    action: str = Field(max_length=40)
    subject: str = Field(default="", max_length=400)
    detail: str = ""
    ok: bool = True


class AcknowledgementRow(SQLModel, table=True):
    __tablename__ = "acknowledgement"
    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(max_length=100, index=True)
    target: str = Field(max_length=300, index=True)
    status: str = Field(max_length=10)
    since: dt.datetime  # the state's `since` when acknowledged: the episode it covers
    by: str = Field(max_length=200)
    at: dt.datetime
    note: str = ""

