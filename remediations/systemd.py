"""systemd.restart: restart a failed unit of a declared service, a few times an hour at most."""

from __future__ import annotations

import fnmatch

from watchtower.probe.registry import register_remediation
from watchtower.remediation.api import (
    NoAction,
    Plan,
    Remediation,
    RemediationContext,
    RemediationMeta,
    Step,
)
from watchtower.store import StateRow

from .nixos import host_of


@register_remediation
class SystemdRestart(Remediation):
    meta = RemediationMeta(
        id="systemd.restart",
        title="Restart a failed unit of a declared service",
        triggers=("host.units",),
        settle_seconds=10,
        max_per_hour=3,
        cooldown_seconds=300,
    )

    def plan(self, state: StateRow, ctx: RemediationContext) -> Plan | NoAction:
        host = host_of(ctx.fleet, state.target)
        if host is None:
            return NoAction(f"{state.target} is not a declared host")
        evidence = ctx.store.evidence(state.evidence_id or 0)
        failed = [u.get("unit", "") for u in evidence.get("failed_declared",
                                                         evidence.get("failed", []))]
        allowed = host.restartable_units or host.units
        units = [u for u in failed if u and any(fnmatch.fnmatchcase(u, p) for p in allowed)]
        if not units:
            return NoAction(f"no failed unit of {host.name} is restartable "
                            f"(failed: {', '.join(failed) or 'none'})")
        steps = [Step(f"restart {u}", "command", host.name,
                      [*host.privileged_helper, "restart", u] if host.privileged_helper
                      else [host.systemctl, "restart", "--", u]) for u in units]
        return Plan(self.meta.id, state.target, host.name,
                    f"restart {', '.join(units)} on {host.name}",
                    "\n".join(f"~ {u}: failed -> restarted" for u in units),
                    steps, [], ["host.units"])
