"""How often a fix may change a host: the per-host hourly limit (`[remediation]
max_per_host_per_hour`), each remediation's own hourly limit and its cooldown per target.

One function says whether a change would be refused and why, in words an operator reads; the
engine asks it before storing a plan (so a fix in its cooldown is not planned, and `remediate
plan` says why) and again when applying (a plan approved an hour ago may meet the limit now).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from watchtower.store import RemediationRow, aware

if TYPE_CHECKING:
    from watchtower.config import Fleet
    from watchtower.remediation.api import RemediationMeta
    from watchtower.store import Store

#: States of a proposal that changed (or tried to change) its host.
CHANGED = ("applied", "verified", "rolled_back", "failed")


def rate_refusal(store: Store, fleet: Fleet, meta: RemediationMeta, host: str, target: str,
                 now: dt.datetime) -> str | None:
    """Why `meta`'s remediation may not change `host` (for `target`) now, or None."""
    hour_ago = now - dt.timedelta(hours=1)
    on_host = [r for r in store.remediation.finished_on(host)
               if r.finished_at and aware(r.finished_at) >= hour_ago and r.state in CHANGED]
    limit = fleet.remediation.max_per_host_per_hour
    if len(on_host) >= min(limit, meta.max_per_hour * 10):
        return (f"{len(on_host)} change(s) were made on {host} in the last hour (the limit is "
                f"{limit}, [remediation] max_per_host_per_hour)")
    last = _latest(r for r in on_host if r.remediation == meta.id and r.target == target)
    if last is not None and last.finished_at is not None:
        ago = (now - aware(last.finished_at)).total_seconds()
        if ago < meta.cooldown_seconds:
            return (f"{meta.id} changed {target} {ago:.0f} s ago (#{last.id}, {last.state}); "
                    f"its cooldown is {meta.cooldown_seconds:g} s")
    per_fix = sum(1 for r in on_host if r.remediation == meta.id)
    if per_fix >= meta.max_per_hour:
        return (f"{meta.id} ran {per_fix} time(s) on {host} in the last hour (at most "
                f"{meta.max_per_hour})")
    return None


def _latest(rows: Iterable[RemediationRow]) -> RemediationRow | None:
    """The row that finished last."""
    latest: RemediationRow | None = None
    for row in rows:
        if row.finished_at is not None and (latest is None or latest.finished_at is None
                                            or aware(row.finished_at)
                                            > aware(latest.finished_at)):
            latest = row
    return latest
