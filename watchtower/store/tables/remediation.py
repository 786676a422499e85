"""Tables of remediation (schema version 3): proposals with their plans, the audit trail, locks.

Why these shapes:
- `remediation`: one row per proposed fix with its whole plan (steps, undo, diff, verifying
  checks) as JSON, its policy at proposal time and its state. State changes are compare-and-set
  updates (`WHERE state = <expected>`), so two processes can never both apply one proposal.
- `remediation_audit`: every step of every remediation — plan, approval, each command or API
  call with its output, undo, verification — with the actor (`auto` or the approving user).
- `known_good`: each system generation under which all of a host's checks passed, learnt from
  watchtower's own sweeps; `nixos.rollback` goes back to the newest of them.
- `host_lock`: one row per host while a remediation works on it. Taking it is an insert that
  fails when the row exists (or a takeover when it has expired), which is atomic in SQLite and
  PostgreSQL alike, so the lock holds across processes.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

REMEDIATION_TABLES = ("remediation", "remediation_audit", "host_lock", "known_good")

#: States a proposal can be in; the open ones block a second proposal for the same fix.
OPEN_STATES = ("awaiting_approval", "approved", "applying", "verifying", "reverting")
FINAL_STATES = ("applied", "verified", "rolled_back", "failed", "rejected", "dry_run", "reverted")


class RemediationRow(SQLModel, table=True):
    __tablename__ = "remediation"
    id: int | None = Field(default=None, primary_key=True)
    remediation: str = Field(max_length=100, index=True)
    target: str = Field(max_length=300, index=True)
    host: str = Field(max_length=300)
    trigger_checks: str = "[]"
    policy: str = Field(max_length=20)
    state: str = Field(max_length=30, index=True)
    summary: str
    plan: str  # JSON: steps, undo, diff, verify, guard, data
    plan_signature: str = ""  # HMAC with a key kept outside the database (remediation/signing.py)
    created_at: dt.datetime
    updated_at: dt.datetime
    approved_by: str | None = Field(default=None, max_length=200)
    approved_at: dt.datetime | None = None
    applied_by: str | None = Field(default=None, max_length=200)
    finished_at: dt.datetime | None = None
    outcome: str = ""


class AuditRow(SQLModel, table=True):
    __tablename__ = "remediation_audit"
    id: int | None = Field(default=None, primary_key=True)
    remediation_id: int = Field(index=True)
    at: dt.datetime
    actor: str = Field(max_length=200)
    action: str = Field(max_length=40)
    detail: str = ""
    ok: bool = True


class HostLockRow(SQLModel, table=True):
    __tablename__ = "host_lock"
    host: str = Field(primary_key=True, max_length=300)
    remediation_id: int
    holder: str = Field(max_length=200)
    acquired_at: dt.datetime
    expires_at: dt.datetime


class KnownGoodRow(SQLModel, table=True):
    """A system generation under which every check of the host and its services passed."""

    __tablename__ = "known_good"
    host: str = Field(primary_key=True, max_length=300)
    system: str = Field(primary_key=True, max_length=500)
    generation: int | None = None
    first_seen: dt.datetime
    last_seen: dt.datetime
