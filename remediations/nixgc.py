"""nix.gc: free disk on `host.disk` failures, keeping the current, booted and known-good
generations (the ones a rollback may need)."""

from __future__ import annotations

from watchtower.inventory import nixos as facts
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

from .nixos import FACT_TIMEOUT, host_of


@register_remediation
class NixGc(Remediation):
    meta = RemediationMeta(
        id="nix.gc",
        title="Collect garbage in the Nix store, keeping the generations that matter",
        triggers=("host.disk",),
        settle_seconds=2,
        max_per_hour=1,
        cooldown_seconds=3600,
    )

    def plan(self, state: StateRow, ctx: RemediationContext) -> Plan | NoAction:
        host = host_of(ctx.fleet, state.target)
        if host is None:
            return NoAction(f"{state.target} is not a declared host")
        with ctx.open_host(host) as t:
            gens = facts.generations(t, host, FACT_TIMEOUT)
            running = facts.system_state(t, host, FACT_TIMEOUT)
        keep_paths = {running.get("current"), running.get("booted")}
        keep_paths |= {k.system for k in ctx.store.remediation.known_good(host.name)}
        keep = {g["number"] for g in gens if g.get("path") in keep_paths or g.get("current")}
        drop = [g["number"] for g in gens if g["number"] not in keep]
        if not drop:
            return NoAction(f"every generation of {host.name} is current, booted or known-good")
        if host.privileged_helper:
            newest_kept = max(gens, key=lambda g: g["number"])["number"]
            span = newest_kept - min(keep) + 1
            steps = [Step(f"delete old generations, keep the newest {span}", "command", host.name,
                          [*host.privileged_helper, "gc", str(span)], timeout=1800)]
        else:
            steps = [
                Step(f"delete generations {', '.join(map(str, drop))}", "command", host.name,
                     [host.nix_env, "-p", host.profile, "--delete-generations",
                      *map(str, drop)]),
                Step("collect garbage", "command", host.name, [host.nix_store, "--gc"],
                     timeout=1800),
            ]
        return Plan(self.meta.id, state.target, host.name,
                    f"delete {len(drop)} old generation(s) of {host.name} and collect garbage",
                    "\n".join(f"- generation {n}" for n in drop)
                    + "\n" + "\n".join(f"= generation {n} (kept)" for n in sorted(keep)),
                    steps, [], ["host.disk"])
