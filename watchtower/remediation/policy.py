"""Whether a plan may run now: the policy in force and the lock per host.

The policy is read from the fleet file every time it matters (a reload may have tightened it):
when planning (`off` plans nothing), when approving, and again when applying. How often a fix
may change a host is limits.py's; that a stored plan is one watchtower made is signing.py's.
The host lock is a database row, so two processes (`watchtower run` and `watchtower remediate
apply`) never change one host at once.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import Literal

from watchtower.config import Fleet
from watchtower.model import utcnow
from watchtower.store import HostLockRow, RemediationRow, Store

Policy = Literal["off", "dry-run", "approve", "auto"]


class PolicyRefused(Exception):
    """Applying was refused: outside policy, locked, rate-limited, guarded or already done."""


def policy_for(fleet: Fleet, remediation: str, target: str) -> Policy:
    """Most specific wins: `id@target`, then `id`, then the default."""
    policies = fleet.remediation.policies
    return policies.get(f"{remediation}@{target}",
                        policies.get(remediation, fleet.remediation.default_policy))


def policy_refusal(fleet: Fleet, row: RemediationRow) -> str | None:
    """Why the policy in force now does not let an approved plan run, or None: `auto`
    runs, `approve` runs what a person approved, nothing else runs."""
    policy = policy_for(fleet, row.remediation, row.target)
    if policy == "auto" or (policy == "approve" and row.approved_by not in (None, "auto")):
        return None
    return (f"policy {policy} does not allow applying it (approve needs a person's "
            "approval)")


def lock_host(store: Store, fleet: Fleet, row: RemediationRow) -> bool:
    """Take the lock of the row's host for it (`[remediation] lock_seconds` at most): True
    when taken, False when another change holds it."""
    assert row.id is not None
    now = utcnow()
    expires = now + dt.timedelta(seconds=fleet.remediation.lock_seconds)
    return store.remediation.lock(
        HostLockRow(host=row.host, remediation_id=row.id, holder=_holder(), acquired_at=now,
                    expires_at=expires), now)


def unlock_host(store: Store, host: str, rid: int) -> None:
    store.remediation.unlock(host, rid)


def _holder() -> str:
    """Who holds a lock, for a person reading the table: this machine and process."""
    return f"{socket.gethostname()}:{os.getpid()}"
