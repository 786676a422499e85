"""NixOS switches over real OpenSSH: detached, confirmed, and safe against a dropped connection.

The host is reached over the session's real sshd (pinned host key, dedicated client key); its
"NixOS" is the session's real Nix store with fake system generations, in a profile of our own
per test. The fake switch-to-configuration points `$CURRENT_SYSTEM_LINK` (our stand-in for
/run/current-system) at its system after `$SWITCH_SLEEP` seconds, as NixOS activation does.
Switches are detached with the real `setsid --fork` (systemd cannot run in this container), and
the engine confirms them by reading the link over fresh SSH connections.

Stand-ins, for what cannot run here: `systemctl` (reports a failed unit when the running
generation is a "bad" one), and, for `nixos.redeploy`, `nixos-rebuild` (no nixpkgs): it sets a
new generation on the host over the same SSH path, with the options watchtower gave it.
"""

from __future__ import annotations

import itertools
import os
import shlex
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from watchtower.remediations.nixos import (
    NixosRedeploy,
    NixosRollback,
    switch_steps,
)

from tests.servers.nixstore import NixStore
from tests.servers.openssh import SSHServer
from watchtower.config import Fleet
from watchtower.model import utcnow
from watchtower.remediation.api import Plan
from watchtower.remediation.engine import Remediator
from watchtower.remediation.live_context import default_context
from watchtower.store import StateRow, Store

NIX_VARS = ("NIX_STORE_DIR", "NIX_STATE_DIR", "NIX_LOG_DIR", "NIX_CONF_DIR")
SYSTEMCTL = """#!/bin/sh
# systemctl stand-in: the running generation (where the current-system link points) says
# which units fail, as `systemctl list-units --failed --plain --no-legend` would print them
if grep -q bad "$(dirname "$0")/current-system/etc/motd" 2>/dev/null; then
  echo "mastodon-web.service loaded failed failed Mastodon web"
fi
exit 0
"""
# On the host: the real setsid, then the session lingers (a slow return path), so the test can
# cut the connection while the detached switch is still running.
LINGERING_SETSID = """#!/bin/sh
/usr/bin/setsid "$@" || exit
exec sleep "${LAUNCH_LINGER:-0}"
"""
_profiles = itertools.count(1)


class Systems:
    """Three systems built once per module: an older good one, the running one, a bad one."""

    def __init__(self, store: NixStore) -> None:
        self.store = store
        self.old = store.build_system("sw-1", {"mastodon": "4.3.1"}, hostname="web1")
        self.running = store.build_system("sw-2", {"mastodon": "4.3.2"}, hostname="web1")
        self.bad = store.build_system("sw-3-bad", {"mastodon": "4.3.2"}, hostname="web1")


@pytest.fixture(scope="module")
def systems(nix_store: NixStore) -> Systems:
    return Systems(nix_store)


class World:
    """One host `web1` over SSH: its own profile (generations 1 = old, 2 = running), its own
    current-system link, state dir, stand-ins and database."""

    def __init__(self, systems: Systems, sshd: SSHServer, root: Path) -> None:
        self.systems = systems
        self.store = systems.store
        self.sshd = sshd
        self.root = root
        self.profile = self.store.state_dir / "profiles" / f"switch-web1-{next(_profiles)}"
        for path in (systems.old, systems.running):
            self.store.nix("nix-env", "-p", str(self.profile), "--set", path, check=True)
        self.link = root / "current-system"
        self.link.symlink_to(systems.running)
        self.switch_log = root / "switch.log"
        self.bin = root / "bin"
        self.bin.mkdir()
        for name, text in (("setsid", LINGERING_SETSID),):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        (root / "systemctl").write_text(SYSTEMCTL)
        (root / "systemctl").chmod(0o755)

    def host(self, env: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
        base_env = {k: v for k, v in self.store.env.items() if k in NIX_VARS}
        return {
            "name": "web1", "ssh": f"{self.sshd.user}@127.0.0.1:{self.sshd.port}",
            "ssh_key": {"$file": str(self.sshd.client_key)},
            "known_hosts": str(self.sshd.known_hosts), "connect_timeout": 5,
            "profile": str(self.profile), "current_system": str(self.link),
            "booted_system": str(self.link), "systemctl": str(self.root / "systemctl"),
            "units": ["mastodon-*"], "detach": "setsid",
            "state_dir": str(self.root / "state"), "switch_confirm_seconds": 20,
            "env": {**base_env, "SWITCH_LOG": str(self.switch_log),
                    "CURRENT_SYSTEM_LINK": str(self.link), **(env or {})},
            **extra,
        }

    def fleet(self, host: dict[str, Any], policy: str = "auto") -> Fleet:
        return Fleet.model_validate({
            "store": {"database": f"sqlite:///{self.root / 'wt.db'}"}, "probe": {"nameservers": ["127.0.0.1:9"], "jitter": 0},
            "hosts": [host],
            "remediation": {"policies": {"nixos.rollback": policy, "nixos.redeploy": policy},
                            "settle_seconds": 0},
        })

    def generation(self) -> int:
        return int(os.readlink(self.profile).rsplit("-", 2)[-2])

    def switch_lines(self) -> list[str]:
        return self.switch_log.read_text().splitlines() if self.switch_log.exists() else []


@pytest.fixture()
def world(systems: Systems, sshd: SSHServer, tmp_path: Path) -> World:
    return World(systems, sshd, tmp_path)


def engine(fleet: Fleet) -> Remediator:
    store = Store(fleet.store.database or "")
    return Remediator(fleet, store, default_context(fleet, store))


def failing(check_id: str) -> StateRow:
    now = utcnow()
    return StateRow(check_id=check_id, target="web1", target_kind="host", family="host",
                    status="fail", summary="failing", since=now, last_at=now)


def apply_rollback(world: World, fleet: Fleet) -> tuple[Remediator, int]:
    """Plan the rollback over SSH (generation 1 is the known-good one), store it approved and
    apply it; the engine plans again at apply time and must get the same steps."""
    remediator = engine(fleet)
    remediator.store.remediation.saw_good("web1", world.systems.old, 1)
    plan = NixosRollback().plan(failing("host.units"), remediator.ctx)
    assert isinstance(plan, Plan), plan
    assert plan.data == {"from": 2, "to": 1}
    row = remediator._store_plan(plan, "auto", ["host.units"])
    assert row.id is not None
    remediator.apply(row.id, "alice")
    return remediator, row.id


def actions(remediator: Remediator, rid: int) -> list[tuple[str, bool, str]]:
    return [(a.action, a.ok, a.detail) for a in remediator.history(rid)]


def test_rollback_over_ssh_is_detached_and_confirmed(world: World) -> None:
    # 3 s: long enough that the first confirmation, one SSH round trip after the launch, sees
    # the old system even on a loaded machine (1 s was not, at load average 16)
    fleet = world.fleet(world.host(env={"SWITCH_SLEEP": "3"}))
    started = time.monotonic()
    remediator, rid = apply_rollback(world, fleet)
    elapsed = time.monotonic() - started
    row = remediator.get(rid)
    assert row is not None and row.state == "applied", row and row.outcome
    assert os.path.realpath(world.link) == world.systems.old and world.generation() == 1
    trail = actions(remediator, rid)
    launch = next(d for a, _ok, d in trail if a == "step 2/2")
    assert launch.startswith("[web1] setsid --fork sh -c ")  # returned at once, not waited for
    confirms = [(ok, d) for a, ok, d in trail if a == "step 2/2 confirm"]
    assert confirms[-1][0] and world.systems.old in confirms[-1][1]
    assert len(confirms) >= 2  # the switch took 3 s: the first look saw the old system
    assert all(ok for a, ok, _d in trail if a in ("step 1/2", "step 2/2", "verify", "applied"))
    # the detached switch logged into the state dir, not into the SSH session
    assert list((world.root / "state").glob("watchtower-switch-1.log"))
    print(f"\nrollback over SSH, detached, confirmed and verified: {elapsed:.1f} s")


def _cut_launch_when_switch_starts(world: World, system: str, killed: list[int]) -> None:
    """Once the host's switch to `system` has begun, cut the SSH connection that launched it.

    The transport's `ssh` (our child) hands the session to the connection master it started,
    which holds the TCP connection and runs as "ssh: CONTROL_PATH [mux]"; SIGKILL of that
    master is a dropped connection. Both are found from our own child's command line, so only
    processes this test started are touched."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if f"switch {system}" in world.switch_lines():
            for pid in _own_children():
                cmd = _cmdline(pid)
                if not cmd or os.path.basename(cmd[0]) != "ssh" or not any(
                        "setsid" in arg for arg in cmd):
                    continue
                control = next(a.split("=", 1)[1].rsplit("/", 1)[0] for a in cmd
                               if a.startswith("ControlPath="))
                for master in _pids():
                    if " ".join(_cmdline(master)).startswith(f"ssh: {control}/"):
                        os.kill(master, signal.SIGKILL)
                        killed.append(master)
                return
        time.sleep(0.05)


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _own_children() -> list[int]:
    me, children = os.getpid(), []
    for pid in _pids():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            children.append(pid)
    return children


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def test_connection_cut_mid_switch_ends_switched_and_applied(world: World) -> None:
    fleet = world.fleet(world.host(env={
        "SWITCH_SLEEP": "2", "LAUNCH_LINGER": "10",
        "PATH": f"{world.bin}:/usr/local/bin:/usr/bin:/bin"}))
    killed: list[int] = []
    cutter = threading.Thread(target=_cut_launch_when_switch_starts,
                              args=(world, world.systems.old, killed), daemon=True)
    cutter.start()
    remediator, rid = apply_rollback(world, fleet)
    cutter.join(timeout=5)
    assert killed, "the SSH session of the launch was never cut"
    row = remediator.get(rid)
    assert row is not None and row.state == "applied", row and row.outcome
    assert os.path.realpath(world.link) == world.systems.old and world.generation() == 1
    trail = actions(remediator, rid)
    names = [a for a, _ok, _d in trail]
    launch = next((ok, d) for a, ok, d in trail if a == "step 2/2")
    assert not launch[0] and "transport failed" in launch[1]  # the connection dropped
    confirms = [(ok, d) for a, ok, d in trail if a == "step 2/2 confirm"]
    assert not confirms[0][0] and world.systems.running in confirms[0][1]  # cut mid-switch
    assert confirms[-1][0] and world.systems.old in confirms[-1][1]  # then the truth
    assert not any(n.startswith("undo ") for n in names)  # not undone, not half-done
    assert names[-2:] == ["verify", "applied"]
    print("\n" + next(d for a, _ok, d in trail if a == "step 2/2").splitlines()[-1])
    assert world.switch_lines().count(f"switch {world.systems.old}") == 1  # never re-run


def test_activation_that_never_completes_times_out_and_is_undone(world: World) -> None:
    host = world.host(switch_confirm_seconds=3)
    del host["env"]["CURRENT_SYSTEM_LINK"]  # the activation never updates current-system
    fleet = world.fleet(host)
    remediator, rid = apply_rollback(world, fleet)
    row = remediator.get(rid)
    assert row is not None and row.state == "failed", row and row.outcome
    assert row.outcome == "step 2 failed; undone"
    trail = actions(remediator, rid)
    names = [a for a, _ok, _d in trail]
    assert "step 2/2 confirm-timeout" in names
    assert 2 <= names.count("step 2/2 confirm") <= 5  # one look a second for 3 s
    assert [ok for a, ok, _d in trail if a.startswith("undo ")] == [True, True, True]
    assert world.generation() == 2 and os.path.realpath(world.link) == world.systems.running


REBUILD = """#!/bin/sh
# nixos-rebuild stand-in: "builds" the declared system and activates it on --target-host over
# ssh with the options watchtower passed in NIX_SSHOPTS, as nixos-rebuild does.
while [ $# -gt 0 ]; do
  case "$1" in --target-host) shift; target="$1" ;; esac
  shift
done
ssh -F none $NIX_SSHOPTS -T "$target" -- {set_cmd} || exit 1
exec ssh -F none $NIX_SSHOPTS -T "$target" -- {switch_cmd}
"""


def test_redeploy_plan_and_rollback_when_the_new_generation_fails(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = world.fleet(world.host(flake="/srv/fleet-flake"))
    host = fleet.hosts[0]
    remediator = engine(fleet)
    plan = NixosRedeploy().plan(failing("drift.generation"), remediator.ctx)
    assert isinstance(plan, Plan), plan
    (step,) = plan.steps
    assert step.host == "@local" and step.argv == [
        "env", f"NIX_SSHOPTS=-p {world.sshd.port} -o BatchMode=yes -o StrictHostKeyChecking=yes "
        f"-o GlobalKnownHostsFile=/dev/null -o UserKnownHostsFile={world.sshd.known_hosts} "
        f"-o IdentitiesOnly=yes -i {world.sshd.client_key}",
        "nixos-rebuild", "switch", "--flake", "/srv/fleet-flake#web1",
        "--target-host", f"{world.sshd.user}@127.0.0.1", "--use-remote-sudo"]
    assert plan.data["replaced_generation"] == 2
    undo = switch_steps(host, 2, world.systems.running)
    assert plan.undo[0].argv == undo[0].argv
    assert plan.undo[1].confirm_expect == world.systems.running

    env = {**{k: v for k, v in world.store.env.items() if k in NIX_VARS},
           "SWITCH_LOG": str(world.switch_log), "CURRENT_SYSTEM_LINK": str(world.link)}
    prefix = ["env", *(f"{k}={v}" for k, v in env.items())]
    set_cmd = shlex.join([*prefix, "nix-env", "-p", str(world.profile), "--set",
                          world.systems.bad])
    switch_cmd = shlex.join([*prefix, f"{world.systems.bad}/bin/switch-to-configuration",
                             "switch"])
    bin_dir = world.root / "appliance-bin"
    bin_dir.mkdir()
    rebuild = bin_dir / "nixos-rebuild"
    rebuild.write_text(REBUILD.format(set_cmd=shlex.quote(set_cmd),
                                      switch_cmd=shlex.quote(switch_cmd)))
    rebuild.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    assert plan.verify == ["drift.generation", "host.units"]
    row = remediator._store_plan(plan, "auto", ["drift.generation"])
    assert row.id is not None
    final = remediator.apply(row.id, "alice")
    assert final.state == "rolled_back", final.outcome
    trail = actions(remediator, row.id)
    assert next((a, ok) for a, ok, _d in trail if a == "step 1/1") == ("step 1/1", True)
    assert f"switch {world.systems.bad}" in world.switch_lines()  # the redeploy happened
    verify = next((ok, d) for a, ok, d in trail if a == "verify")
    assert not verify[0] and verify[1].endswith(": fail"), verify  # host.units fails
    assert [ok for a, ok, _d in trail if a.startswith("undo ")][-1]
    assert world.generation() == 2 and os.path.realpath(world.link) == world.systems.running
