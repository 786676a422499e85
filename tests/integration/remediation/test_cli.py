"""`watchtower remediate apply ID` exits 0 only for `applied`: the real command, in a subprocess.

Scripts and cron jobs act on the exit status, so it must tell the truth: a change that was
undone after its verification failed, and a change the policy in force refuses, both exit 1
with a message saying so. The host is local, its "NixOS" a real Nix store with fake system
generations (tests/servers/nixstore.py); the switch is detached with the real `setsid --fork`
and confirmed through the current-system link; `systemctl` is a stand-in (no systemd here).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from watchtower.remediations.nixos import NixosRollback

from tests.servers.nixstore import NixStore
from watchtower.config import Fleet
from watchtower.model import utcnow
from watchtower.remediation.api import Plan
from watchtower.remediation.engine import Remediator
from watchtower.remediation.live_context import default_context
from watchtower.store import StateRow, Store

NIX_VARS = ("NIX_STORE_DIR", "NIX_STATE_DIR", "NIX_LOG_DIR", "NIX_CONF_DIR")
SYSTEMCTL = """#!/bin/sh
# systemctl stand-in: a "bad" running generation has a failed unit
if grep -q bad "$(dirname "$0")/current-system/etc/motd" 2>/dev/null; then
  echo "mastodon-web.service loaded failed failed Mastodon web"
fi
exit 0
"""
_profiles = itertools.count(1)


def watchtower_command() -> str:
    """The installed console script of the interpreter running the tests."""
    beside = Path(sys.executable).with_name("watchtower")
    found = str(beside) if beside.exists() else shutil.which("watchtower")
    assert found, "the watchtower console script is not installed"
    return found


class Host:
    """A local host with generations (1 = the target of the rollback, 2 = running)."""

    def __init__(self, store: NixStore, root: Path, target_is_bad: bool) -> None:
        self.root = root
        self.store = store
        self.target = store.build_system("cli-1-bad" if target_is_bad else "cli-1",
                                         {"mastodon": "4.3.2"}, hostname="web1")
        self.running = store.build_system("cli-2", {"mastodon": "4.3.2"}, hostname="web1")
        self.profile = store.state_dir / "profiles" / f"cli-web1-{next(_profiles)}"
        for path in (self.target, self.running):
            store.nix("nix-env", "-p", str(self.profile), "--set", path, check=True)
        self.link = root / "current-system"
        self.link.symlink_to(self.running)
        (root / "systemctl").write_text(SYSTEMCTL)
        (root / "systemctl").chmod(0o755)
        self.config = root / "fleet.toml"

    def fleet_doc(self, policy: str) -> dict[str, Any]:
        env = {k: v for k, v in self.store.env.items() if k in NIX_VARS}
        return {
            "store": {"database": f"sqlite:///{self.root / 'wt.db'}"}, "probe": {"nameservers": ["127.0.0.1:9"], "jitter": 0},
            "hosts": [{"name": "web1", "profile": str(self.profile),
                       "current_system": str(self.link), "booted_system": str(self.link),
                       "systemctl": str(self.root / "systemctl"), "units": ["mastodon-*"],
                       "detach": "setsid", "state_dir": str(self.root / "state"),
                       "switch_confirm_seconds": 20,
                       "env": {**env, "CURRENT_SYSTEM_LINK": str(self.link)}}],
            "remediation": {"policies": {"nixos.rollback": policy}, "settle_seconds": 0},
        }

    def approved_rollback(self, file_policy: str) -> int:
        """Plan the rollback to generation 1 (known-good as far as watchtower learnt), store it
        approved under `auto`, and write the fleet file with `file_policy` for the command."""
        fleet = Fleet.model_validate(self.fleet_doc("auto"))
        store = Store(fleet.store.database or "")
        remediator = Remediator(fleet, store, default_context(fleet, store))
        store.remediation.saw_good("web1", self.target, 1)
        now = utcnow()
        state = StateRow(check_id="host.units", target="web1", target_kind="host",
                         family="host", status="fail", summary="failing", since=now,
                         last_at=now)
        plan = NixosRollback().plan(state, remediator.ctx)
        assert isinstance(plan, Plan), plan
        row = remediator._store_plan(plan, "auto", ["host.units"])
        store.close()
        self.config.write_text(tomli_w.dumps(self.fleet_doc(file_policy)))
        assert row.id is not None
        return row.id

    def apply(self, rid: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [watchtower_command(), "remediate", "apply", str(rid), "-c", str(self.config),
             "--user", "alice"],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "NO_COLOR": "1"})


@pytest.fixture()
def host_factory(nix_store: NixStore, tmp_path: Path) -> Any:
    def make(target_is_bad: bool = False) -> Host:
        return Host(nix_store, tmp_path, target_is_bad)
    return make


def test_applied_exits_0(host_factory: Any) -> None:
    host: Host = host_factory()
    rid = host.approved_rollback("auto")
    proc = host.apply(rid)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"#{rid} applied: verified: the checks pass"
    assert os.path.realpath(host.link) == host.target


def test_rolled_back_exits_1(host_factory: Any) -> None:
    host: Host = host_factory(target_is_bad=True)
    rid = host.approved_rollback("auto")
    proc = host.apply(rid)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.strip() == (f"#{rid} rolled_back: verification failed; the change was "
                                   "undone")
    assert os.path.realpath(host.link) == host.running  # undone, and confirmed undone


def test_refused_by_the_policy_in_force_exits_1(host_factory: Any) -> None:
    host: Host = host_factory()
    rid = host.approved_rollback("approve")  # tightened after it was approved automatically
    proc = host.apply(rid)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip() == (f"refused: remediation {rid}: policy approve does not "
                                   "allow applying it (approve needs a person's approval)")
    assert os.path.realpath(host.link) == host.running  # nothing ran
