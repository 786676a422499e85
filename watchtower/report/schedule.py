"""Cron schedules of `[[reports]]`: build, store and mail each report when its time comes.

Its own small APScheduler, started by `watchtower run` beside the check scheduler, because
reports are not sweeps: a report job reads the store, never the network (except the SMTP relay).
Each `[[reports]]` entry is one cron job (UTC); one more job retries pending reports every
minute, so a report whose relay was down goes out once the relay is back, exactly once. Jobs
coalesce: after downtime a missed report is built once, not once per missed tick.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from watchtower.config import Fleet, ReportSchedule
from watchtower.model import utcnow
from watchtower.report.build import build_report
from watchtower.report.delivery import deliver_due, store_report
from watchtower.report.over_time import Period
from watchtower.store import ReportRow, Store

log = logging.getLogger(__name__)

RETRY_JOB = "reports:deliver"


def make_scheduled_report(store: Store, fleet: Fleet, spec: ReportSchedule,
                          now: dt.datetime | None = None) -> ReportRow:
    """Build the report of one `[[reports]]` entry over its last `period_days`, store it as
    pending, and try to send it at once; returns the stored row."""
    now = now or utcnow()
    report = build_report(store, fleet, spec.customer, Period.last_days(spec.period_days, now),
                          name=spec.name, now=now)
    channel = next((c for c in fleet.notifications.email if c.name == spec.channel), None)
    domain = channel.sender.rpartition("@")[2] if channel else None
    row = store_report(store, report, recipients=spec.recipients, channel=spec.channel,
                       formats=spec.formats, sender_domain=domain)
    deliver_due(store, fleet, now)
    return row


class ReportScheduler:
    """Runs `[[reports]]` on their cron schedules and retries unsent reports."""

    def __init__(self, store: Store, fleet: Fleet, *, retry_seconds: float = 60.0) -> None:
        self.store = store
        self.fleet = fleet
        self.retry_seconds = retry_seconds
        self._sched = BackgroundScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})

    def start(self) -> None:
        self._add_jobs()
        self._sched.add_job(self._retry, IntervalTrigger(seconds=self.retry_seconds,
                                                         timezone="UTC"),
                            id=RETRY_JOB, name=RETRY_JOB, replace_existing=True,
                            next_run_time=utcnow())
        self._sched.start()
        log.info("report schedules: %s", ", ".join(f"{r.name} ({r.cron})"
                                                  for r in self.fleet.reports) or "none")

    def _add_jobs(self) -> None:
        for spec in self.fleet.reports:
            self._sched.add_job(self._run, CronTrigger.from_crontab(spec.cron, timezone="UTC"),
                                args=[spec.name], id=f"report:{spec.name}", name=spec.name,
                                replace_existing=True)

    def jobs(self) -> list[str]:
        return sorted(j.id for j in self._sched.get_jobs())

    def _run(self, name: str) -> None:
        spec = next((r for r in self.fleet.reports if r.name == name), None)
        if spec is None:
            return
        try:
            row = make_scheduled_report(self.store, self.fleet, spec)
            log.info("report %s built as #%s (%s)", name, row.id, row.state)
        except Exception as exc:  # the scheduler must survive a store outage
            log.error("report %s could not be built: %s", name, exc)

    def _retry(self) -> None:
        try:
            deliver_due(self.store, self.fleet)
        except Exception as exc:
            log.error("report delivery: %s", exc)

    def reconfigure(self, fleet: Fleet) -> None:
        """A reloaded fleet file: replace every report job (the retry job stays)."""
        self.fleet = fleet
        for job in self._sched.get_jobs():
            if job.id != RETRY_JOB:
                job.remove()
        self._add_jobs()

    def shutdown(self) -> None:
        if self._sched.running:
            self._sched.shutdown(wait=True)
