"""nixos.rollback end to end on a real Nix store: a bad generation is detected by the
scheduler's sweeps, rolled back to the last known-good generation under `auto`, verified,
and every step is in the audit trail. Under `approve` nothing happens until a person approves.

systemd cannot run in this container, so `systemctl` is a stand-in that reports the unit
states the *running generation* would have: a generation built as "…-bad" has a failed
mastodon-web.service. Everything else (nix-env, profiles, generations, closures,
switch-to-configuration) is real.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from watchtower.remediations.nixos import NixosRollback

from tests.servers.base import require
from tests.servers.nixstore import NixStore
from watchtower.config import Fleet
from watchtower.probe import registry
from watchtower.probe.scheduler import Scheduler
from watchtower.remediation.engine import Remediator
from watchtower.remediation.live_context import default_context
from watchtower.remediation.policy import PolicyRefused
from watchtower.store import Store

STANDIN = """#!/bin/sh
# systemctl stand-in: the running generation says which units fail
if grep -q bad "{profile}/etc/motd" 2>/dev/null; then
  echo "mastodon-web.service loaded failed failed Mastodon web"
fi
exit 0
"""


@pytest.fixture()
def world(tmp_path: Path) -> Any:
    require("nix-build", "nix-env", why="real Nix store, profiles and generations")
    nix = NixStore(tmp_path / "nix").start()
    old = nix.build_system("1", {"mastodon": "4.2.0"})
    good = nix.build_system("2", {"mastodon": "4.3.2"})
    bad = nix.build_system("3-bad", {"mastodon": "4.3.2"})
    nix.set_generation(old)
    nix.set_generation(good)
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(STANDIN.format(profile=nix.profile))
    systemctl.chmod(0o755)
    env = {**nix.env, "SWITCH_LOG": str(nix.switch_log)}

    def fleet(policy: str, migrations: list[str] | None = None) -> Fleet:
        return Fleet.model_validate({
            "store": {"database": f"sqlite:///{tmp_path / 'wt.db'}"}, "probe": {"nameservers": ["127.0.0.1:9"], "jitter": 0},
            "hosts": [{"name": "web1", "profile": str(nix.profile),
                       "current_system": str(nix.profile), "booted_system": str(nix.profile),
                       "env": env, "systemctl": str(systemctl), "detach": False,
                       "units": ["mastodon-*"]}],
            "services": [{"name": "social", "kind": "mastodon", "host": "web1",
                          "base_url": "https://social.example.test/",
                          "irreversible_migrations": migrations or []}],
            "checks": {"host": {"interval": 1}, "drift": {"interval": 1}},
            "remediation": {"policies": {"nixos.rollback": policy, "systemd.restart": "off"},
                            "settle_seconds": 0},
        })

    return {"nix": nix, "good": good, "bad": bad, "old": old, "fleet": fleet}


def checks() -> dict[str, Any]:
    return {cid: c for cid, c in registry.checks().items()
            if cid in ("host.units", "drift.reboot")}


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_bad_generation_is_rolled_back_under_auto_through_the_scheduler(world: Any) -> None:
    fleet: Fleet = world["fleet"]("auto")
    nix: NixStore = world["nix"]
    store = Store(fleet.store.database or "")
    remediator = Remediator(fleet, store, default_context(fleet, store))
    scheduler = Scheduler(fleet, store, checks(),
                          on_sweep=lambda _k, _o: remediator.run_auto())
    scheduler.start()
    try:
        wait_for(lambda: any(k.system == world["good"] for k in store.remediation.known_good("web1")),
                 30, "generation 2 learnt as known-good")
        bad_at = time.monotonic()
        nix.set_generation(world["bad"])  # a deploy of a broken generation
        wait_for(lambda: any(r.state in ("applied", "rolled_back", "failed")
                             for r in remediator.proposals()), 60, "the rollback")
        elapsed = time.monotonic() - bad_at
    finally:
        scheduler.shutdown()
    (row,) = remediator.proposals()
    assert row.remediation == "nixos.rollback" and row.state == "applied", row.outcome
    assert nix.current_system() == world["good"]
    assert f"switch {world['good']}" in "\n".join(nix.switch_log_lines())
    actions = [a.action for a in remediator.history(row.id)]
    assert actions[:2] == ["planned", "undo-recorded"]
    assert {"step 1/2", "step 2/2", "verify", "applied"} <= set(actions)
    assert all(a.ok for a in remediator.history(row.id))
    print(f"\nbad generation to verified rollback: {elapsed:.1f} s")


def test_approve_waits_for_a_person(world: Any) -> None:
    fleet: Fleet = world["fleet"]("approve")
    nix: NixStore = world["nix"]
    store = Store(fleet.store.database or "")
    remediator = Remediator(fleet, store, default_context(fleet, store))
    remediator.sleep = lambda _s: None
    scheduler = Scheduler(fleet, store, checks(), on_sweep=lambda _k, _o: remediator.run_auto())
    for group in scheduler.groups:
        scheduler.sweep(group)  # generation 2: all good, learnt
    nix.set_generation(world["bad"])
    for group in scheduler.groups:
        scheduler.sweep(group)
    (row,) = remediator.proposals()
    assert row.state == "awaiting_approval"
    assert nix.current_system() == world["bad"]  # nothing applied without approval
    with pytest.raises(PolicyRefused):
        remediator.apply(row.id or 0, "mallory")
    remediator.approve(row.id or 0, "alice")
    final = remediator.apply(row.id or 0, "alice")
    assert final.state == "applied" and nix.current_system() == world["good"]


def test_rollback_to_an_explicit_generation_and_migration_guard(world: Any) -> None:
    fleet: Fleet = world["fleet"]("approve", migrations=["4.3.0"])
    store = Store(fleet.store.database or "")
    ctx = default_context(fleet, store)
    host = fleet.hosts[0]
    plan = NixosRollback().plan_for(host, ctx, "web1", ["host.units"], generation=1)
    assert not isinstance(plan, str) and getattr(plan, "steps", None)
    assert plan.guard and "4.3.0 database migration" in plan.guard  # type: ignore[union-attr]
    assert plan.steps[0].argv == ["nix-env", "-p", str(world["nix"].profile),  # type: ignore[union-attr]
                                  "--switch-generation", "1"]
    unguarded = world["fleet"]("approve")
    plan2 = NixosRollback().plan_for(unguarded.hosts[0], default_context(unguarded, store),
                                     "web1", ["host.units"], generation=1)
    assert plan2.guard is None  # type: ignore[union-attr]
    assert json.loads(json.dumps(plan2.data)) == {"from": 2, "to": 1}  # type: ignore[union-attr]
