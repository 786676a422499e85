"""The only writes the dashboard makes, each checked against the role and audited.

The role is checked here, not only by hiding buttons: a page that forgets to disable a button,
or a crafted rerun, still cannot approve as a viewer. Refused attempts are audited too, since
"someone tried" is exactly what an auditor wants to see.

Approvals and rejections go through `Remediator` (watchtower.remediation.engine), which
re-checks the policy and the proposal's state by compare-and-set and writes its own audit row
naming the user. The dashboard never applies a plan: `watchtower run` (or `watchtower remediate
apply`) does, under the policy in force then.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.engine import Engine
from sqlmodel import Session
from watchtower.dashboards.auth import Action, User

from watchtower.compliance.explanations import ExplanationError
from watchtower.config import Fleet
from watchtower.model import Status, utcnow
from watchtower.probe import registry
from watchtower.remediation.engine import (
    PolicyRefused,
    RemediationContext,
    Remediator,
    Step,
    StepOutcome,
)
from watchtower.store import StateRow, Store, aware
from watchtower.store import explanations as explanation_store
from watchtower.store.dashboard import AcknowledgementRow, DashboardAuditRow
from watchtower.store.explanations import ExplanationRow

log = logging.getLogger(__name__)


class NotAllowed(PermissionError):
    """The signed-in user's role does not allow the action."""


def audit(engine: Engine, user: User, action: str, subject: str = "", detail: str = "",
          ok: bool = True) -> None:
    with Session(engine) as s:
        s.add(DashboardAuditRow(at=utcnow(), user=user.name, source=user.source,
                                role=str(user.role), action=action, subject=subject[:400],
                                detail=detail[:4000], ok=ok))
        s.commit()


def require(engine: Engine, user: User, action: Action, subject: str) -> None:
    if not user.can(action):
        audit(engine, user, f"{action}-refused", subject, f"role {user.role} may not {action}",
              ok=False)
        raise NotAllowed(f"{user.name} ({user.role}) may not {action}")


def _no_apply(*_args: object) -> StepOutcome:
    raise RuntimeError("the dashboard never applies remediations")


def read_only_remediator(fleet: Fleet, store: Store) -> Remediator:
    """A Remediator that can approve and reject but has no way to touch a host."""

    def no_verify(*_args: object) -> list[Status]:
        raise RuntimeError("the dashboard never verifies remediations")

    def no_http(_step: Step) -> StepOutcome:
        raise RuntimeError("the dashboard never calls APIs")

    ctx = RemediationContext(fleet, store, _no_apply, no_http, no_verify)
    return Remediator(fleet, store, ctx)


def approve(remediator: Remediator, user: User, rid: int) -> None:
    """Approve a proposal awaiting approval (operators only); raises NotAllowed/PolicyRefused."""
    engine = remediator.store.engine
    require(engine, user, Action.APPROVE, f"remediation #{rid}")
    try:
        remediator.approve(rid, user.name)
    except PolicyRefused as exc:
        audit(engine, user, "approve", f"remediation #{rid}", str(exc), ok=False)
        raise
    audit(engine, user, "approve", f"remediation #{rid}")


def reject(remediator: Remediator, user: User, rid: int, reason: str) -> None:
    engine = remediator.store.engine
    require(engine, user, Action.REJECT, f"remediation #{rid}")
    try:
        remediator.reject(rid, user.name, reason)
    except PolicyRefused as exc:
        audit(engine, user, "reject", f"remediation #{rid}", str(exc), ok=False)
        raise
    audit(engine, user, "reject", f"remediation #{rid}", reason)


def acknowledge(engine: Engine, user: User, check_id: str, target: str, note: str = ""
                ) -> AcknowledgementRow:
    """Mark the current problem episode of (check, target) as seen by `user`."""
    subject = f"{check_id} on {target}"
    require(engine, user, Action.ACKNOWLEDGE, subject)
    with Session(engine) as s:
        st = s.get(StateRow, (check_id, target))
        if st is None:
            raise LookupError(f"no state for {subject}")
        row = AcknowledgementRow(check_id=check_id, target=target, status=st.status,
                                 since=aware(st.since), by=user.name, at=utcnow(),
                                 note=note[:1000])
        s.add(row)
        s.commit()
        s.refresh(row)
    audit(engine, user, "acknowledge", subject, note)
    return row


def explain(engine: Engine, user: User, domain: str, criterion: str, why: str,
            until: dt.date) -> ExplanationRow:
    """Record a comply-or-explain explanation as `user` (operators only, audited)."""
    subject = f"{criterion} on {domain}"
    require(engine, user, Action.EXPLAIN, subject)
    try:
        row = explanation_store.record(engine, domain, criterion, user.name, why, until,
                                       now=utcnow(), check_ids=registry.checks())
    except ExplanationError as exc:
        audit(engine, user, "explain", subject, str(exc), ok=False)
        raise
    audit(engine, user, "explain", subject, f"#{row.id} until {until.isoformat()}: {why}")
    return row


def revoke_explanation(engine: Engine, user: User, explanation_id: int, why: str
                       ) -> ExplanationRow:
    """Withdraw an explanation as `user` (operators only, audited)."""
    subject = f"explanation #{explanation_id}"
    require(engine, user, Action.EXPLAIN, subject)
    try:
        row = explanation_store.revoke(engine, explanation_id, user.name, why, now=utcnow())
    except ExplanationError as exc:
        audit(engine, user, "revoke-explanation", subject, str(exc), ok=False)
        raise
    audit(engine, user, "revoke-explanation", subject, why)
    return row


def record_login(engine: Engine, user: User) -> None:
    audit(engine, user, "login")


def record_failed_login(engine: Engine, name: str, detail: str = "") -> None:
    """A wrong name or password: the name typed is kept (cut short), never the password."""
    with Session(engine) as s:
        s.add(DashboardAuditRow(at=utcnow(), user=name[:200] or "?", source="local", role="",
                                action="login-failed", detail=detail, ok=False))
        s.commit()


def record_logout(engine: Engine, user: User, why: str) -> None:
    audit(engine, user, "logout", detail=why)


def audit_trail(engine: Engine, since: dt.datetime | None = None, limit: int = 500
                ) -> list[DashboardAuditRow]:
    from sqlmodel import col, select

    with Session(engine) as s:
        q = select(DashboardAuditRow)
        if since is not None:
            q = q.where(DashboardAuditRow.at >= since)
        return list(s.exec(q.order_by(col(DashboardAuditRow.id).desc()).limit(limit)).all())
