"""Scheduler.reload: unchanged groups keep their timing, new ones run, removed ones go."""

from __future__ import annotations

from pathlib import Path

from tests.unit.alerts.helpers import fleet, store
from watchtower.model import TargetKind, Verdict
from watchtower.probe.api import Check, CheckMeta


def check(cid: str, family: str, interval: float) -> Check:
    class Probe(Check):
        meta = CheckMeta(id=cid, family=family, title=cid, applies_to=(TargetKind.ZONE,),
                         interval=interval)

        def judge(self, facts: dict) -> Verdict:  # type: ignore[type-arg]
            raise NotImplementedError

    return Probe()


def test_reload_keeps_state_and_timing(tmp_path: Path) -> None:
    from watchtower.probe.scheduler import Scheduler

    checks = {"dns.a": check("dns.a", "dns", 300), "web.b": check("web.b", "web", 3600)}
    sched = Scheduler(fleet(), store(tmp_path), checks)
    sched.start(run_now=False)
    try:
        before = dict(sched.jobs())
        assert set(before) == {"every:300s", "every:3600s"}
        sched.reconfigure(fleet('[checks.web]\ninterval = 60\n'))
        after = dict(sched.jobs())
        assert set(after) == {"every:300s", "every:60s"}
        assert after["every:300s"] == before["every:300s"]  # untouched group keeps its next run
        assert [g.check_ids for g in sched.groups if g.key == "every:60s"] == [("web.b",)]
        assert sched.fleet.checks["web"].interval == 60
    finally:
        sched.shutdown()


def test_sweep_feeds_the_alert_processor(tmp_path: Path) -> None:
    from watchtower.alerting.processor import AlertProcessor
    from watchtower.model import Status
    from watchtower.probe.sweep import run_sweep

    class Failing(Check):
        meta = CheckMeta(id="dns.x", family="dns", title="x", applies_to=(TargetKind.ZONE,))

        def gather(self, target, ctx):  # type: ignore[no-untyped-def]
            return {}

        def judge(self, facts):  # type: ignore[no-untyped-def]
            return Verdict(Status.FAIL, "broken")

    cfg = fleet('[[zones]]\nname = "a.test"\n[checks."dns.x"]\nfailure_threshold = 2\n')
    s = store(tmp_path)
    proc = AlertProcessor(s, cfg)
    for _ in range(2):
        run_sweep(cfg, s, {"dns.x": Failing()}, on_stored=proc.process)
    (state,) = s.alerts.states()
    assert state.firing and state.problems == 2 and state.reason == "broken"
