"""Probes from three vantages (network namespaces made here) through procrastinate on the
real PostgreSQL: a broken route at one vantage is a `warn` naming it, a vantage without an
agent has its own alert, kill -9 of an agent mid-job loses nothing, two schedulers defer
each tick once, and the database restarted mid-sweep makes agents wait and resume.

Kept short (ticks of 1 s, a 6 s interval, a 2 s lease, one endpoint): the module runs in
well under a minute. Needs root for `ip netns`; skipped with the reason otherwise, and fails
under CI=true (tests/integration/scaleout/harness.py).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.scaleout.harness import (
    CHECK,
    PORT,
    SERVICE,
    Namespaces,
    Proc,
    certificate,
    fleet_file,
    make_database,
    require_namespaces,
    spawn,
    wait,
    watchtower,
)
from tests.servers.base import require_module
from tests.servers.postgres import PostgreSQL
from watchtower.store import Store

VANTAGES = ("ams", "fra", "nyc")
#: a vantage in the fleet with no agent anywhere: its own alert
IDLE = "lon"
STARTED = re.compile(r"(\S+): start (\S+) tick (\d+)")


@dataclass
class World:
    ns: Namespaces
    store: Store
    pg: PostgreSQL
    fleet: Path
    delay: Path
    procs: dict[str, Proc]
    workdir: Path

    def agent(self, vantage: str, name: str) -> Proc:
        proc = spawn(name, watchtower("agent", "-c", str(self.fleet), "--vantage", vantage,
                                      "--name", name), self.workdir, self.ns.of(vantage))
        self.procs[name] = proc
        return proc

    def state(self, check: str, target: str) -> tuple[str, str, int | None] | None:
        for row in self.store.current():
            if (row.check_id, row.target) == (check, target):
                return row.status, row.summary, row.evidence_id
        return None

    def starts(self) -> list[tuple[str, str, int]]:
        """(agent, group, tick) of every job an agent started, from the agents' logs."""
        return [(m[1], m[2], int(m[3])) for p in self.procs.values()
                for m in STARTED.finditer(p.text())]


@pytest.fixture(scope="module")
def world(postgres: PostgreSQL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_namespaces()
    require_module("procrastinate", why="scale-out tests")
    workdir = tmp_path_factory.mktemp("scaleout")
    ns = Namespaces(f"wtso{os.getpid()}", VANTAGES)
    procs: dict[str, Proc] = {}
    try:
        ns.make()
        url = make_database(postgres, f"scaleout_{os.getpid()}")
        ca, cert, key = certificate(workdir)
        delay = workdir / "delay"
        server = str(Path(__file__).with_name("target_server.py"))
        procs["target"] = spawn("target", [sys.executable, server, str(cert), str(key),
                                           SERVICE, str(PORT), str(delay)], workdir,
                                ns.target)
        fleet = fleet_file(workdir, url, ca, (*VANTAGES, IDLE), VANTAGES, interval=6)
        store = Store(url)  # migrates before any role starts
        w = World(ns, store, postgres, fleet, delay, procs, workdir)
        for i in (1, 2):
            procs[f"scheduler-{i}"] = spawn(
                f"scheduler-{i}", watchtower("run", "--role", "scheduler", "-c", str(fleet)),
                workdir)
        w.agent("ams", "ams-1")
        w.agent("ams", "ams-2")
        w.agent("fra", "fra-1")
        w.agent("nyc", "nyc-1")
        yield w
        store.close()
    finally:
        for proc in procs.values():  # all at once: each stops gracefully in parallel
            proc.terminate()
        for proc in procs.values():
            proc.stop()
        ns.close()


def _scrape(w: World) -> str:
    """The first scheduler's /metrics (its port is chosen at start and logged)."""
    found = re.search(r"metrics at (http://\S+/metrics)", w.procs["scheduler-1"].text())
    assert found, "scheduler-1 did not say where /metrics is"
    with urllib.request.urlopen(found[1], timeout=10) as answer:
        return str(answer.read().decode())


def _all_ok(w: World) -> bool:
    state = w.state(CHECK, "target")
    return state is not None and "from all 3 vantages" in state[1]


def test_quorum_names_the_vantage_whose_route_is_broken(world: World) -> None:
    procs = list(world.procs.values())
    wait(lambda: _all_ok(world), 60, "a first combined verdict from all three vantages", procs)
    world.ns.break_route("nyc")
    try:
        wait(lambda: "nyc" in (world.state(CHECK, "target") or ("", "", None))[1], 30,
             "the quorum verdict naming nyc", procs)
        status, summary, evidence_id = world.state(CHECK, "target") or ("", "", None)
        assert status == "warn", summary
        assert summary.startswith("only from nyc (1 of 3), below the quorum of 2"), summary
        assert evidence_id is not None
        evidence = world.store.evidence(evidence_id)
        assert evidence["quorum"] == "2 of 3"
        assert evidence["problems"] == ["nyc"]
        assert sorted(evidence["vantages"]) == ["ams", "fra", "nyc"]
        assert evidence["vantages"]["nyc"]["status"] == "error"
        assert {evidence["vantages"][v]["status"] for v in ("ams", "fra")} <= {"ok", "warn"}
        per_vantage = {(v, s) for c, t, _k, v, s in world.store.vantages.states()
                       if (c, t) == (CHECK, "target")}
        assert ("nyc", "error") in per_vantage
        page = _scrape(world)
        assert (f'watchtower_vantage_check_status{{check="{CHECK}",status="error",'
                'target="target",vantage="nyc"} 1.0') in page
        assert 'watchtower_vantage_agent_last_seen_timestamp_seconds{vantage="ams"}' in page
    finally:
        world.ns.mend_route("nyc")  # the tests below see all three agree again


def test_a_vantage_without_agent_alerts_on_its_own(world: World) -> None:
    procs = list(world.procs.values())
    wait(lambda: (world.state("scaleout.vantage", IDLE) or ("",))[0] == "fail", 20,
         "the idle vantage's own result", procs)
    assert (world.state("scaleout.vantage", "ams") or ("",))[0] == "ok"
    assert "no agent has ever reported" in (world.state("scaleout.vantage", IDLE) or
                                            ("", ""))[1]
    wait(lambda: any(a.check_id == "scaleout.vantage" and a.target == IDLE and a.firing
                     for a in world.store.alerts.states()), 20, "its alert firing", procs)


def test_kill_9_mid_job_loses_nothing(world: World) -> None:
    procs = list(world.procs.values())
    world.delay.write_text("2.5")  # each handshake waits: the agents stay mid-job
    since = time.time()  # jobs of later ticks start after the delay is in place

    def mid_job() -> list[tuple[str, str, int]]:
        return [s for s in world.starts() if s[0].startswith("ams-") and s[2] >= since]

    try:
        wait(lambda: bool(mid_job()), 20, "an ams agent mid-job", procs)
        victim, group, tick = mid_job()[0]
        world.procs[victim].kill9()
        other = "ams-2" if victim == "ams-1" else "ams-1"
        wait(lambda: (other, group, tick) in world.starts(), 20,
             f"{other} taking over tick {tick} after the lease", procs)
    finally:
        world.delay.write_text("0")
    at = dt.datetime.fromtimestamp(tick, dt.UTC)

    def judged_with_ams() -> bool:
        return any(r.first_at.replace(tzinfo=dt.UTC) <= at <= r.last_at.replace(tzinfo=dt.UTC)
                   and "no result from" not in r.summary
                   for r in world.store.history(CHECK, "target"))

    wait(judged_with_ams, 30, f"tick {tick} judged with ams's result", procs)
    world.agent("ams", f"{victim}-again")


def test_two_schedulers_defer_each_tick_once(world: World) -> None:
    assert world.procs["scheduler-1"].alive() and world.procs["scheduler-2"].alive()
    runs: dict[tuple[str, str, int], int] = {}
    for agent, group, tick in world.starts():
        key = (agent.split("-")[0], group, tick)
        runs[key] = runs.get(key, 0) + 1
    assert runs, "no job ran"
    twice = {k: n for k, n in runs.items() if n > 1 and k[0] != "ams"}
    assert not twice, f"jobs run more than once per vantage and tick: {twice}"
    # ams ran one tick twice: the job of the agent killed above, once more elsewhere
    assert sum(n - 1 for k, n in runs.items() if k[0] == "ams") <= 1


def test_database_restart_mid_sweep_agents_wait_and_resume(world: World) -> None:
    procs = list(world.procs.values())
    world.pg.restart()
    restarted = time.time()
    time.sleep(1)

    def fresh_verdict() -> bool:
        state = [r for r in world.store.current() if (r.check_id, r.target) == (CHECK, "target")]
        return bool(state) and state[0].last_at.replace(tzinfo=dt.UTC).timestamp() > restarted
    wait(fresh_verdict, 40, "a combined verdict of a tick after the restart", procs)
    assert _all_ok(world)
    dead = [p.name for p in procs if not p.alive() and not p.name.startswith("ams-")]
    assert not dead, f"stopped with the database: {dead}"
