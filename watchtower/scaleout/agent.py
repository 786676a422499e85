"""An agent's job: the pairs of one chunk run by the same sweep engine as a local sweep
(`run_sweep`: stages, prerequisites, worker pool, watchdog), recorded per vantage.

A job claimed after its deadline (one interval after its tick) is dropped, not run late: its
pairs are then missing from this vantage, which the quorum never counts as `ok`. The agent
beats its heartbeat into the store, which is how the scheduler knows a vantage has a live
agent (procrastinate's own worker heartbeat is what returns a dead agent's jobs).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from watchtower.config import Fleet
from watchtower.model import utcnow
from watchtower.probe.api import Check
from watchtower.probe.dependencies import index_of
from watchtower.probe.runner import Job, plan_jobs
from watchtower.probe.sweep import run_sweep
from watchtower.scaleout.engine import ProbeJob
from watchtower.store import Store

log = logging.getLogger(__name__)


@dataclass
class Agent:
    """The `Handler` of `watchtower agent --vantage NAME`."""

    fleet: Fleet
    store: Store
    checks: dict[str, Check]
    vantage: str
    name: str
    dropped: int = 0
    ran: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    async def tick(self, app: object, timestamp: int) -> None:  # agents claim no ticks
        raise RuntimeError("an agent does not run the scheduler's tick")

    def jobs_for(self, job: ProbeJob) -> list[Job]:
        """The job's pairs as the fleet plans them (overrides, applicability), planned over
        the job's own targets only: a job is 25 pairs, a fleet thousands of targets."""
        wanted = set(job.pairs)
        ids = {c for c, _ in job.pairs}
        subset = {cid: c for cid, c in self.checks.items() if cid in ids}
        known = index_of(self.fleet).targets  # built once per fleet
        targets = [known[key] for key in {key for _, key in job.pairs} if key in known]
        return [j for j in plan_jobs(self.fleet, subset, targets)
                if (j.check.meta.id, j.target.key) in wanted]

    def probe(self, job: ProbeJob) -> None:
        late = time.time() - job.deadline
        if late >= 0:
            self.dropped += 1
            log.warning("%s: job of %s at tick %d dropped, %.0fs past its deadline", self.name,
                        job.group, job.tick, late)
            return
        jobs = self.jobs_for(job)
        log.info("%s: start %s tick %d (%d probes)", self.name, job.group, job.tick, len(jobs))
        subset = {j.check.meta.id: j.check for j in jobs}
        outcome = run_sweep(self.fleet, None, subset, jobs=jobs, schedule=job.group,
                            stop=self._stop, keep_results=True)
        # the sweep also ran the pairs' prerequisites (probe/dependencies.py): those are
        # another group's to report, and would count as this job's expected results
        wanted = set(job.pairs)
        mine = [r for r in outcome.results if (r.check, r.target.key) in wanted]
        self.store.vantages.record(self.vantage, job.group, job.tick, mine)
        self.ran += 1
        log.info("%s: done %s tick %d: %d results in %.1fs", self.name, job.group, job.tick,
                 outcome.total, outcome.seconds)

    # -- heartbeat ----------------------------------------------------------------------------

    def beat_forever(self, stop: threading.Event) -> None:
        """Heartbeat every quarter lease until `stop`; a database away is logged, not fatal."""
        every = max(0.5, self.fleet.scaleout.lease / 4)
        while not stop.is_set():
            try:
                self.store.vantages.agent_seen(self.name, self.vantage, utcnow())
            except Exception as exc:
                log.warning("%s: heartbeat not stored (%s)", self.name, exc)
            stop.wait(every)

    def stop(self) -> None:
        self._stop.set()
