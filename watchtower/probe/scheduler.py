"""The schedule: APScheduler runs each group of checks on its interval or cron, with jitter.

Checks that share a schedule run together as one sweep, so they share one DNS cache (SPF, DMARC,
MTA-STS and DKIM of a domain cost each query once). Jobs coalesce (a late run is not repeated for
every missed tick) and never overlap themselves; a run late by more than its grace time is
skipped and the next tick resumes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from watchtower.config import Fleet
from watchtower.model import Result, utcnow
from watchtower.probe.api import Check
from watchtower.probe.sweep import SweepOutcome, run_sweep
from watchtower.store import Flip, Store

if TYPE_CHECKING:
    from watchtower.probe.runtime import RuntimeStats

log = logging.getLogger(__name__)
PRUNE_JOB = "store-prune"


@dataclass(frozen=True, slots=True)
class Group:
    """Checks that run together: same interval (or same cron expression)."""

    key: str
    check_ids: tuple[str, ...]
    interval: float | None
    cron: str | None

    def trigger(self, jitter: float) -> BaseTrigger:
        if self.cron is not None:
            return CronTrigger.from_crontab(self.cron, timezone="UTC")
        assert self.interval is not None
        spread = min(jitter, self.interval / 10) or None
        return IntervalTrigger(seconds=self.interval, jitter=spread, timezone="UTC")


def schedule_groups(fleet: Fleet, checks: dict[str, Check]) -> list[Group]:
    by_key: dict[tuple[float | None, str | None], list[str]] = {}
    for cid, check in checks.items():
        override = fleet.override_for(cid, check.meta.family)
        if override.disabled:
            continue
        if override.cron:
            key: tuple[float | None, str | None] = (None, override.cron)
        else:
            key = (override.interval or check.meta.interval, None)
        by_key.setdefault(key, []).append(cid)
    groups = []
    for (interval, cron), ids in sorted(by_key.items(), key=lambda kv: (kv[0][0] or 0,
                                                                         kv[0][1] or "")):
        name = f"cron:{cron}" if cron else f"every:{interval:g}s"
        groups.append(Group(name, tuple(sorted(ids)), interval, cron))
    return groups


class Scheduler:
    """Owns the APScheduler instance and the sweeps it starts."""

    def __init__(
        self,
        fleet: Fleet,
        store: Store,
        checks: dict[str, Check],
        *,
        on_sweep: Callable[[str, SweepOutcome], None] | None = None,
        on_flip: Callable[[Flip], None] | None = None,
        on_stored: Callable[[list[Result]], object] | None = None,
        runtime: RuntimeStats | None = None,
    ) -> None:
        self.fleet = fleet
        self.on_stored = on_stored
        self.runtime = runtime
        self.store = store
        self.checks = checks
        self.on_sweep = on_sweep
        self.on_flip = on_flip
        self.stop_event = threading.Event()
        self.groups = schedule_groups(fleet, checks)
        self._sched = BackgroundScheduler(
            timezone="UTC",
            executors={"default": ThreadPoolExecutor(max(4, len(self.groups)))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        self._sched.add_listener(self._job_error, EVENT_JOB_ERROR)
        if runtime is not None:
            runtime.attach(self._sched)
        self.last_sweep_at: dict[str, float] = {}

    def _job_error(self, event: JobExecutionEvent) -> None:
        log.error("sweep %s failed: %s", event.job_id, event.exception)

    def start(self, *, run_now: bool = True) -> None:
        now = utcnow()
        for group in self.groups:
            self._sched.add_job(
                self.sweep, group.trigger(self.fleet.probe.jitter), args=[group],
                id=group.key, name=group.key, replace_existing=True,
                next_run_time=now if run_now else None,
            )
        self._schedule_prune()
        self._sched.start()
        log.info("scheduled %d groups: %s", len(self.groups),
                 ", ".join(f"{g.key} ({len(g.check_ids)} checks)" for g in self.groups))

    def _schedule_prune(self) -> None:
        """History retention once a day ([retention] prune_cron); see
        watchtower/store/retention.py."""
        self._sched.add_job(self.prune, CronTrigger.from_crontab(self.fleet.retention.prune_cron,
                                                                 timezone="UTC"),
                            id=PRUNE_JOB, name=PRUNE_JOB, replace_existing=True)

    def prune(self) -> None:
        from watchtower.store.retention import Policy, prune

        if not self.stop_event.is_set():
            prune(self.store, Policy.from_settings(self.fleet.retention))

    def sweep(self, group: Group) -> SweepOutcome | None:
        if self.stop_event.is_set():
            return None
        subset = {cid: self.checks[cid] for cid in group.check_ids if cid in self.checks}
        outcome = run_sweep(self.fleet, self.store, subset, schedule=group.key,
                            stop=self.stop_event, on_flip=self.on_flip, on_stored=self.on_stored,
                            keep_results=False)  # stored as they come; counts are enough
        if self.runtime is not None:
            self.runtime.sweep_done(group.key, outcome.seconds)
        counts = outcome.counts()
        log.info("sweep %s: %d results in %.1fs (%s)", group.key, outcome.total,
                 outcome.seconds, ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        self.last_sweep_at[group.key] = outcome.seconds
        if self.on_sweep is not None:
            self.on_sweep(group.key, outcome)
        return outcome

    def reconfigure(self, fleet: Fleet) -> None:
        """Switch to a new, already validated fleet without losing state or timing.

        State lives in the store, so nothing is lost. A group whose schedule is unchanged keeps
        its next run time (a reload does not make every check run at once); new schedules run
        now; schedules no longer wanted are removed. Sweeps already running finish with the
        fleet they started with.
        """
        new_groups = schedule_groups(fleet, self.checks)
        old_keys = {g.key for g in self.groups}
        jitter_changed = fleet.probe.jitter != self.fleet.probe.jitter
        self.fleet = fleet
        for group in new_groups:
            trigger = group.trigger(fleet.probe.jitter)
            if group.key in old_keys and self._sched.get_job(group.key) is not None:
                self._sched.modify_job(group.key, args=[group])
                if jitter_changed:
                    self._sched.reschedule_job(group.key, trigger=trigger)
            else:
                self._sched.add_job(self.sweep, trigger, args=[group], id=group.key,
                                    name=group.key, replace_existing=True,
                                    next_run_time=utcnow())
        if self._sched.get_job(PRUNE_JOB) is not None:
            self._schedule_prune()  # picks up a changed prune_cron
        for key in old_keys - {g.key for g in new_groups}:
            if self._sched.get_job(key) is not None:
                self._sched.remove_job(key)
        self.groups = new_groups
        log.info("reloaded: %d schedule groups", len(new_groups))

    def jobs(self) -> list[tuple[str, str]]:
        """The sweep jobs and their next run (the daily retention job is `PRUNE_JOB`)."""
        return [(j.id, str(j.next_run_time)) for j in self._sched.get_jobs()
                if j.id != PRUNE_JOB]

    def shutdown(self) -> None:
        """Stop starting sweeps, let running probes see the stop flag, wait for them."""
        self.stop_event.set()
        if self._sched.running:
            self._sched.shutdown(wait=True)
