"""What the scheduler records (watchtower/scaleout/fanout.py): a vantage's own result, and a
pair's combined result with each vantage's in its evidence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from watchtower.config import Fleet
from watchtower.model import Status, Target, TargetKind
from watchtower.probe import registry
from watchtower.probe.runner import Job
from watchtower.scaleout.fanout import combined_result, vantage_result
from watchtower.store.vantages import VantageReport

NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=30)


def test_a_vantage_is_live_while_an_agent_beats_within_the_lease() -> None:
    assert vantage_result("fra", NOW - dt.timedelta(seconds=10), NOW, LEASE).status is Status.OK
    late = vantage_result("fra", NOW - dt.timedelta(minutes=5), NOW, LEASE)
    assert (late.status, late.target) == (Status.FAIL, Target(TargetKind.VANTAGE, "fra"))
    assert late.summary == "no live agent (last heartbeat 2026-12-01 11:55:00 UTC)"
    never = vantage_result("fra", None, NOW, LEASE)
    assert never.status is Status.FAIL and "ever" in never.summary


def report(vantage: str, status: str) -> VantageReport:
    return VantageReport(vantage, "web.hsts", "web", "www.a.test", "endpoint", status,
                         f"{status} at {vantage}", {"v": vantage}, 5.0, NOW)


def test_the_combined_result_keeps_each_vantage_result() -> None:
    fleet = Fleet.model_validate({"scaleout": {"vantages": ["ams", "fra", "nyc"]}})
    job = Job(registry.checks()["web.hsts"], Target(TargetKind.ENDPOINT, "www.a.test"), 10)
    seen = {"ams": report("ams", "ok"), "nyc": report("nyc", "error")}
    got = combined_result(fleet, job, seen, NOW)
    assert got.status is Status.WARN and got.at == NOW
    assert got.evidence["quorum"] == "2 of 3"
    assert got.evidence["problems"] == ["nyc"] and got.evidence["missing"] == ["fra"]
    assert got.evidence["vantages"]["nyc"] == {"status": "error", "summary": "error at nyc",
                                               "evidence": {"v": "nyc"}}


def test_a_tick_is_judged_once_even_when_the_scheduler_dies_before_closing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The judging of a tick is claimed before its verdicts are recorded: a scheduler that dies
    between recording and closing (or a second scheduler) does not record the tick again."""
    from watchtower.model import Result
    from watchtower.scaleout.fanout import Fanout
    from watchtower.store import Store

    fleet = Fleet.model_validate({"scaleout": {"vantages": ["ams"]},
                                  "endpoints": [{"url": "https://www.a.test/"}]})
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    checks = {"web.hsts": registry.checks()["web.hsts"]}
    fanout = Fanout(fleet, store, checks)
    group = fanout.groups()[0]
    tick = int(NOW.timestamp())
    assert store.vantages.open_deferral(group.key, tick, NOW, 1)
    (job,) = fanout.plan(group)
    store.vantages.record("ams", group.key, tick, [Result(
        "web.hsts", "web", job.target, Status.OK, "ok at ams", {}, 5.0, NOW)])

    def dies(group: str, tick: int) -> None:
        raise RuntimeError("scheduler killed between recording and closing")

    with monkeypatch.context() as m:
        m.setattr(store.vantages, "close", dies)
        with pytest.raises(RuntimeError):
            fanout.judge_due(NOW + dt.timedelta(minutes=1))
    assert fanout.judge_due(NOW + dt.timedelta(minutes=2)) == 0  # restarted: not again
    judged = [s for s in store.sweeps() if s.schedule == f"quorum:{group.key}"]
    assert len(judged) == 1 and judged[0].total == 1
    store.close()


def test_an_agent_plans_a_job_over_its_own_targets_as_the_whole_fleet_would() -> None:
    """jobs_for plans only the job's targets (a job is 25 pairs of a fleet of thousands) and
    gets what planning the whole fleet and keeping the job's pairs gives: overrides included."""
    from watchtower.probe.runner import plan_jobs
    from watchtower.scaleout.agent import Agent
    from watchtower.scaleout.engine import ProbeJob

    fleet = Fleet.model_validate({
        "endpoints": [{"url": f"https://www{i}.a.test/"} for i in range(30)],
        "checks": {"web.hsts": {"timeout": 7}, "web.headers": {"disabled": True}}})
    checks = {c: registry.checks()[c] for c in ("web.hsts", "web.headers", "web.https.redirect")}
    every = plan_jobs(fleet, checks)
    pairs = [(j.check.meta.id, j.target.key) for j in every if j.target.name in
             ("www3.a.test", "www17.a.test")] + [("web.headers", "endpoint:www3.a.test")]
    agent = Agent(fleet, None, checks, "ams", "ams-0")  # type: ignore[arg-type]
    got = agent.jobs_for(ProbeJob("every:3600s", 0, 0, pairs))
    want = [j for j in every if (j.check.meta.id, j.target.key) in set(pairs)]
    assert [(j.check.meta.id, j.target.key, j.timeout) for j in got] == \
        [(j.check.meta.id, j.target.key, j.timeout) for j in want]
    assert {j.timeout for j in got if j.check.meta.id == "web.hsts"} == {7}
    assert not any(j.check.meta.id == "web.headers" for j in got)  # disabled stays out
