"""The scheduler's tick: defer the due groups into the queue of every vantage their checks are
placed at, judge the finished deferrals by quorum, say which vantages have no live agent.

Recording goes through the ordinary write path (`Store.record`, then `on_stored`: alert
thresholds, incidents, notices), so dashboards, metrics, reports and remediation read combined
verdicts like any others; each vantage's own result is in the combined result's evidence.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import procrastinate

from watchtower.config import Fleet
from watchtower.model import Result, Status, Target, TargetKind, utcnow
from watchtower.probe.api import Check
from watchtower.probe.runner import Job, plan_jobs
from watchtower.probe.scheduler import Group, schedule_groups
from watchtower.scaleout import engine
from watchtower.scaleout.quorum import Seen, combine
from watchtower.scaleout.ticks import chunked, deadline_of, is_due, queue_of
from watchtower.store import Flip, Store
from watchtower.store.vantages import Deferral, VantageReport

log = logging.getLogger(__name__)

VANTAGE_CHECK = "scaleout.vantage"


@dataclass
class Fanout:
    """The `Handler` of `watchtower run --role scheduler`."""

    fleet: Fleet
    store: Store
    checks: dict[str, Check]
    on_stored: Callable[[list[Result]], object] | None = None
    on_flip: Callable[[Flip], None] | None = None
    on_sweep: Callable[[str, object], None] | None = None

    def groups(self) -> list[Group]:
        return schedule_groups(self.fleet, self.checks)

    def plan(self, group: Group) -> list[Job]:
        subset = {cid: self.checks[cid] for cid in group.check_ids if cid in self.checks}
        return plan_jobs(self.fleet, subset)

    async def tick(self, app: procrastinate.App, timestamp: int) -> None:
        period = self.fleet.scaleout.tick
        for group in self.groups():
            if is_due(group, timestamp, period):
                await self.defer(app, group, timestamp)
        await engine.retry_stalled(app, self.fleet.scaleout.lease)
        await asyncio.to_thread(self.judge_due, utcnow())
        await asyncio.to_thread(self.vantage_liveness, utcnow())
        if timestamp % 3600 < period:  # hourly: judged deferrals a day old are not needed
            await asyncio.to_thread(self.store.vantages.prune_deferrals,
                                    utcnow() - dt.timedelta(days=1))

    def probe(self, job: engine.ProbeJob) -> None:  # schedulers claim no probe jobs
        raise RuntimeError("a scheduler does not run probe jobs")

    async def defer(self, app: procrastinate.App, group: Group, tick: int) -> None:
        """Queue the group's pairs of this tick per placed vantage (once: the deferral row)."""
        settings = self.fleet.scaleout
        per_vantage: dict[str, list[tuple[str, str]]] = {}
        planned = self.plan(group)
        for job in planned:
            placed = settings.placement_for(job.check.meta.id, job.target.name)
            for vantage in placed.vantages:
                per_vantage.setdefault(vantage, []).append((job.check.meta.id, job.target.key))
        expected = sum(len(p) for p in per_vantage.values())
        deadline = deadline_of(group, tick, settings.tick)
        # judged once all results are in, or when a job started just before its deadline has
        # had its probes' time (and a dead agent's job its lease) to finish
        grace = max((j.timeout for j in planned), default=0.0) + settings.lease
        won = await asyncio.to_thread(
            self.store.vantages.open_deferral, group.key, tick,
            dt.datetime.fromtimestamp(deadline + grace, dt.UTC), expected)
        if not won:  # another scheduler deferred this tick already
            return
        jobs = [(queue_of(v), engine.ProbeJob(group.key, tick, deadline, chunk))
                for v, pairs in sorted(per_vantage.items())
                for chunk in chunked(pairs, settings.chunk)]
        await engine.defer_probes(app, jobs)
        log.info("tick %d: %s deferred to %d vantage(s) as %d job(s)", tick, group.key,
                 len(per_vantage), len(jobs))

    # -- judging ----------------------------------------------------------------------------

    def judge_due(self, now: dt.datetime) -> int:
        """Judge every deferral that is complete or past its deadline; returns how many."""
        done = 0
        groups = {g.key: g for g in self.groups()}
        for deferral in self.store.vantages.due(now):
            if not self.store.vantages.claim(deferral.group, deferral.tick):
                continue  # another scheduler judges it (or did)
            group = groups.get(deferral.group)
            if group is not None:
                self._judge(group, deferral)
            self.store.vantages.close(deferral.group, deferral.tick)
            done += 1
        return done

    def _judge(self, group: Group, deferral: Deferral) -> None:
        reports: dict[tuple[str, str], dict[str, VantageReport]] = {}
        for r in self.store.vantages.reports(deferral.group, deferral.tick):
            reports.setdefault((r.check_id, f"{r.target_kind}:{r.target}"), {})[r.vantage] = r
        at = dt.datetime.fromtimestamp(deferral.tick, dt.UTC)
        results = [combined_result(self.fleet, job, reports.get(
            (job.check.meta.id, job.target.key), {}), at) for job in self.plan(group)]
        self._record(f"quorum:{group.key}", results)
        if self.on_sweep is not None:
            self.on_sweep(group.key, results)

    def _record(self, schedule: str | None, results: list[Result]) -> None:
        """Store like a sweep (a `sweep` row when `schedule` is named), then the callbacks."""
        if not results:
            return
        sweep_id = None if schedule is None else self.store.begin_sweep(schedule, len(results))
        flips = self.store.record(results, sweep_id)
        if sweep_id is not None:
            counts: dict[Status, int] = {}
            for r in results:
                counts[r.status] = counts.get(r.status, 0) + 1
            self.store.finish_sweep(sweep_id, counts)
        for flip in flips:
            if self.on_flip is not None:
                self.on_flip(flip)
        if self.on_stored is not None:
            self.on_stored(results)

    # -- vantages -----------------------------------------------------------------------------

    def vantage_liveness(self, now: dt.datetime) -> list[Result]:
        """One result per vantage: `fail` when none of its agents beat within the lease."""
        lease = dt.timedelta(seconds=self.fleet.scaleout.lease)
        seen = self.store.vantages.last_seen()
        results = [vantage_result(v, seen.get(v), now, lease)
                   for v in self.fleet.scaleout.vantages]
        self._record(None, results)  # every tick: no sweep row each time
        return results


def combined_result(fleet: Fleet, job: Job, seen: dict[str, VantageReport],
                    at: dt.datetime) -> Result:
    """The quorum verdict of one pair, its evidence each vantage's result."""
    placed = fleet.scaleout.placement_for(job.check.meta.id, job.target.name)
    verdict = combine(placed.vantages, {v: Seen(Status(r.status), r.summary)
                                        for v, r in seen.items()}, placed.quorum())
    evidence = {
        "quorum": f"{placed.quorum()} of {len(placed.vantages)}",
        "problems": list(verdict.problems), "missing": list(verdict.missing),
        "vantages": {v: {"status": r.status, "summary": r.summary, "evidence": r.evidence}
                     for v, r in sorted(seen.items()) if v in placed.vantages},
    }
    duration = max((r.duration_ms for r in seen.values()), default=0.0)
    return Result(job.check.meta.id, job.check.meta.family, job.target, verdict.status,
                  verdict.summary, evidence, duration, at, verdict.findings)


def vantage_result(vantage: str, last_seen: dt.datetime | None, now: dt.datetime,
                   lease: dt.timedelta) -> Result:
    target = Target(TargetKind.VANTAGE, vantage)
    if last_seen is not None and now - last_seen <= lease:
        status, summary = Status.OK, "an agent is live"
    elif last_seen is None:
        status, summary = Status.FAIL, "no agent has ever reported from this vantage"
    else:
        status = Status.FAIL
        summary = f"no live agent (last heartbeat {last_seen:%Y-%m-%d %H:%M:%S} UTC)"
    return Result(VANTAGE_CHECK, "scaleout", target, status, summary,
                  {"last_seen": last_seen.isoformat() if last_seen else None}, 0.0, now)
