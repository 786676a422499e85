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

from watchtower.compliance import explanations
from watchtower.compliance.explanations import ExplanationError
from watchtower.config import Fleet
from watchtower.model import Status, utcnow
from watchtower.probe import registry
from watchtower.remediation.api import RemediationContext, Step, StepOutcome
from watchtower.remediation.engine import Remediator
from watchtower.remediation.policy import PolicyRefused
from watchtower.store import AcknowledgementRow, DashboardAuditRow, ExplanationRow, Store

from .auth import Action, User

log = logging.getLogger(__name__)


class NotAllowed(PermissionError):
    """The signed-in user's role does not allow the action."""


def audit(store: Store, user: User, action: str, subject: str = "", detail: str = "",
          ok: bool = True) -> None:
    store.dashboard.audit(DashboardAuditRow(
        at=utcnow(), user=user.name, source=user.source, role=str(user.role), action=action,
        subject=subject[:400], detail=detail[:4000], ok=ok))


def require(store: Store, user: User, action: Action, subject: str) -> None:
    if not user.can(action):
        audit(store, user, f"{action}-refused", subject, f"role {user.role} may not {action}",
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
    store = remediator.store
    require(store, user, Action.APPROVE, f"remediation #{rid}")
    try:
        remediator.approve(rid, user.name)
    except PolicyRefused as exc:
        audit(store, user, "approve", f"remediation #{rid}", str(exc), ok=False)
        raise
    audit(store, user, "approve", f"remediation #{rid}")


def reject(remediator: Remediator, user: User, rid: int, reason: str) -> None:
    store = remediator.store
    require(store, user, Action.REJECT, f"remediation #{rid}")
    try:
        remediator.reject(rid, user.name, reason)
    except PolicyRefused as exc:
        audit(store, user, "reject", f"remediation #{rid}", str(exc), ok=False)
        raise
    audit(store, user, "reject", f"remediation #{rid}", reason)


def acknowledge(store: Store, user: User, check_id: str, target: str, note: str = ""
                ) -> AcknowledgementRow:
    """Mark the current problem episode of (check, target) as seen by `user`."""
    subject = f"{check_id} on {target}"
    require(store, user, Action.ACKNOWLEDGE, subject)
    row = store.dashboard.acknowledge(check_id, target, user.name, utcnow(), note)
    audit(store, user, "acknowledge", subject, note)
    return row


def explain(store: Store, user: User, domain: str, criterion: str, why: str,
            until: dt.date) -> ExplanationRow:
    """Record a comply-or-explain explanation as `user` (operators only, audited)."""
    subject = f"{criterion} on {domain}"
    require(store, user, Action.EXPLAIN, subject)
    try:
        row = explanations.record(store, domain, criterion, user.name, why, until,
                                  now=utcnow(), check_ids=registry.checks())
    except ExplanationError as exc:
        audit(store, user, "explain", subject, str(exc), ok=False)
        raise
    audit(store, user, "explain", subject, f"#{row.id} until {until.isoformat()}: {why}")
    return row


def revoke_explanation(store: Store, user: User, explanation_id: int, why: str
                       ) -> ExplanationRow:
    """Withdraw an explanation as `user` (operators only, audited)."""
    subject = f"explanation #{explanation_id}"
    require(store, user, Action.EXPLAIN, subject)
    try:
        row = explanations.revoke(store, explanation_id, user.name, why, now=utcnow())
    except ExplanationError as exc:
        audit(store, user, "revoke-explanation", subject, str(exc), ok=False)
        raise
    audit(store, user, "revoke-explanation", subject, why)
    return row


def record_login(store: Store, user: User) -> None:
    audit(store, user, "login")


def record_failed_login(store: Store, name: str, detail: str = "") -> None:
    """A wrong name or password: the name typed is kept (cut short), never the password."""
    store.dashboard.audit(DashboardAuditRow(at=utcnow(), user=name[:200] or "?", source="local",
                                            role="", action="login-failed", detail=detail,
                                            ok=False))


def record_logout(store: Store, user: User, why: str) -> None:
    audit(store, user, "logout", detail=why)


def audit_trail(store: Store, since: dt.datetime | None = None, limit: int = 500
                ) -> list[DashboardAuditRow]:
    return store.dashboard.audit_trail(since, limit)
