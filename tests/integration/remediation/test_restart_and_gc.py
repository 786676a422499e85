"""systemd.restart (hourly limit, only declared units) and nix.gc (keeps the current, booted
and known-good generations) on a real Nix store; systemctl is a recording stand-in because
systemd cannot run in this container."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.servers.base import require
from tests.servers.nixstore import NixStore
from watchtower.config import Fleet
from watchtower.probe import registry
from watchtower.probe.sweep import run_sweep
from watchtower.remediation.engine import Remediator
from watchtower.remediation.live_context import default_context
from watchtower.store import Store

STANDIN = """#!/bin/sh
# systemctl stand-in: `restart` is recorded and clears the failure
if [ "$1" = restart ]; then echo "$3" >> "{log}"; rm -f "{flag}"; exit 0; fi
if [ -e "{flag}" ]; then echo "mastodon-web.service loaded failed failed Mastodon web"; fi
exit 0
"""


def fleet_for(tmp: Path, nix: NixStore, systemctl: Path, policies: dict[str, str]) -> Fleet:
    return Fleet.model_validate({
        "store": {"database": f"sqlite:///{tmp / 'wt.db'}"}, "probe": {"nameservers": ["127.0.0.1:9"]},
        "hosts": [{"name": "web1", "profile": str(nix.profile),
                   "current_system": str(nix.profile), "booted_system": str(nix.profile),
                   "env": nix.env, "systemctl": str(systemctl), "detach": False,
                   "units": ["mastodon-*"]}],
        "remediation": {"policies": policies, "settle_seconds": 0},
    })


def test_failed_unit_is_restarted_and_verified(tmp_path: Path) -> None:
    require("nix-env", why="host facts come from a real profile")
    nix = NixStore(tmp_path / "nix").start()
    nix.set_generation(nix.build_system("1"))
    flag, log = tmp_path / "failed", tmp_path / "restarts"
    flag.touch()
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(STANDIN.format(log=log, flag=flag))
    systemctl.chmod(0o755)
    fleet = fleet_for(tmp_path, nix, systemctl, {"systemd.restart": "auto",
                                                 "nixos.rollback": "off"})
    store = Store(fleet.store.database or "")
    run_sweep(fleet, store, {"host.units": registry.checks()["host.units"]})
    remediator = Remediator(fleet, store, default_context(fleet, store))
    (row,) = remediator.run_auto()
    assert row.state == "applied", row.outcome
    assert log.read_text().split() == ["mastodon-web.service"]


def test_gc_keeps_current_booted_and_known_good(tmp_path: Path) -> None:
    require("nix-env", why="garbage collection of a real store")
    nix = NixStore(tmp_path / "nix").start()
    paths: dict[int, Any] = {}
    for gen in range(1, 6):
        paths[gen] = nix.build_system(str(gen))
        nix.set_generation(paths[gen])
    systemctl = tmp_path / "systemctl"
    systemctl.write_text("#!/bin/sh\nexit 0\n")
    systemctl.chmod(0o755)
    fleet = fleet_for(tmp_path, nix, systemctl, {"nix.gc": "approve"})
    store = Store(fleet.store.database or "")
    store.remediation.saw_good("web1", paths[2], 2)
    ctx = default_context(fleet, store)
    gc = registry.remediations()["nix.gc"]()

    class Failing:  # the host.disk state that triggers it
        check_id, target, evidence_id, status = "host.disk", "web1", None, "fail"

    plan = gc.plan(Failing(), ctx)  # type: ignore[arg-type]
    assert plan.steps[0].argv == ["nix-env", "-p", str(nix.profile),
                                               "--delete-generations", "1", "3", "4"]
    remediator = Remediator(fleet, store, ctx)
    remediator.sleep = lambda _s: None
    row = remediator._store_plan(plan, "approve", ["host.disk"])
    remediator.approve(row.id or 0, "alice")
    remediator.apply(row.id or 0, "alice")  # verification needs host.disk: ran for real
    left = [g.number for g in nix.list_generations()]
    assert left == [2, 5]
