"""Remediation proposals, their audit trail, host locks and known-good generations
(`Store.remediation`).

The engine (watchtower/remediation/engine.py) decides; this module keeps what it decided, with
the two guarantees the database gives it across processes:
- `transition`: a compare-and-set on the proposal's state (`WHERE state IN expected`), so two
  processes can never both apply one proposal;
- `lock`: one `host_lock` row per host, taken by an insert that fails when the row exists (or a
  takeover when it expired), atomic in SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from watchtower.model import utcnow
from watchtower.store.db import Database, aware
from watchtower.store.tables import AuditRow, HostLockRow, KnownGoodRow, RemediationRow


class RemediationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- proposals --------------------------------------------------------------------------

    def add(self, row: RemediationRow) -> RemediationRow:
        """Store a new proposal; returns it with its id."""
        with Session(self.db.engine) as s:
            s.add(row)
            s.commit()
            s.refresh(row)
        return row

    def get(self, rid: int) -> RemediationRow | None:
        with Session(self.db.engine) as s:
            return s.get(RemediationRow, rid)

    def proposals(self, states: Iterable[str] | None = None) -> list[RemediationRow]:
        """Proposals by id, optionally only those in `states`."""
        with Session(self.db.engine) as s:
            q = select(RemediationRow)
            if states is not None:
                q = q.where(col(RemediationRow.state).in_(list(states)))
            return list(s.exec(q.order_by(col(RemediationRow.id))).all())

    def transition(self, rid: int, expected: Iterable[str], new: str, at: dt.datetime,
                   **values: Any) -> bool:
        """Compare-and-set on the state column: True when this caller made the change."""
        stmt = (update(RemediationRow)
                .where(col(RemediationRow.id) == rid,
                       col(RemediationRow.state).in_(list(expected)))
                .values(state=new, updated_at=at, **values))
        with self.db.engine.begin() as conn:
            return bool(conn.execute(stmt).rowcount)

    def finished_on(self, host: str) -> list[RemediationRow]:
        """Every finished proposal on a host (rate limits and cooldowns read them)."""
        with Session(self.db.engine) as s:
            return list(s.exec(select(RemediationRow).where(
                RemediationRow.host == host, col(RemediationRow.finished_at).is_not(None))).all())

    def active_in(self, start: dt.datetime, end: dt.datetime) -> list[RemediationRow]:
        """Proposals created before `end` and changed since `start` (a report's period)."""
        with Session(self.db.engine) as s:
            q = (select(RemediationRow)
                 .where(col(RemediationRow.updated_at) >= start,
                        col(RemediationRow.created_at) < end)
                 .order_by(col(RemediationRow.created_at)))
            return list(s.exec(q).all())

    # -- audit ------------------------------------------------------------------------------

    def audit(self, row: AuditRow) -> None:
        with Session(self.db.engine) as s:
            s.add(row)
            s.commit()

    def audit_trail(self, rid: int | None = None) -> list[AuditRow]:
        """Audit rows in order, of one proposal or of all."""
        with Session(self.db.engine) as s:
            q = select(AuditRow)
            if rid is not None:
                q = q.where(AuditRow.remediation_id == rid)
            return list(s.exec(q.order_by(col(AuditRow.id))).all())

    # -- host locks -------------------------------------------------------------------------

    def lock(self, lock: HostLockRow, now: dt.datetime) -> bool:
        """Take the host's lock (an expired one is taken over: its holder died)."""
        with Session(self.db.engine) as s:
            existing = s.get(HostLockRow, lock.host)
            if existing is not None:
                if aware(existing.expires_at) > now:
                    return False
                s.delete(existing)
                s.commit()
            s.add(lock)
            try:
                s.commit()
            except IntegrityError:
                return False
        return True

    def unlock(self, host: str, rid: int) -> None:
        """Release the host's lock if this proposal holds it."""
        with Session(self.db.engine) as s:
            existing = s.get(HostLockRow, host)
            if existing is not None and existing.remediation_id == rid:
                s.delete(existing)
                s.commit()

    # -- known-good generations -------------------------------------------------------------

    def saw_good(self, host: str, system: str, generation: int | None,
                 at: dt.datetime | None = None) -> None:
        """Record that every check of `host` passed under `system` (first/last seen)."""
        at = at or utcnow()
        with Session(self.db.engine) as s:
            row = s.get(KnownGoodRow, (host, system))
            if row is None:
                row = KnownGoodRow(host=host, system=system, generation=generation,
                                   first_seen=at, last_seen=at)
            row.last_seen = at
            row.generation = generation if generation is not None else row.generation
            s.add(row)
            s.commit()

    def known_good(self, host: str) -> list[KnownGoodRow]:
        """The host's known-good systems, most recently seen first."""
        with Session(self.db.engine) as s:
            return list(s.exec(select(KnownGoodRow).where(KnownGoodRow.host == host)
                               .order_by(col(KnownGoodRow.last_seen).desc())).all())
