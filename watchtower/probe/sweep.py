"""One sweep end to end: plan the pairs, run them, store results in batches, report flips.

Results are written in small batches as they arrive, so a crash mid-sweep loses at most the
batch in flight, and every result handed to `on_result` (progress, JSON output, logs) has already
been committed: what was reported is stored.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from watchtower.config import Fleet
from watchtower.model import Result, Status, Target
from watchtower.probe import availability, registry
from watchtower.probe.api import Check
from watchtower.probe.clients import SweepClients
from watchtower.probe.dependencies import Prerequisites, run_staged
from watchtower.probe.runner import Job, Runner, plan_jobs
from watchtower.probe.workers import ProcessRunner, processes_for
from watchtower.store import Flip, Store

log = logging.getLogger(__name__)

BATCH_SIZE = 200
BATCH_SECONDS = 0.5


@dataclass
class SweepOutcome:
    """What one sweep did. `results` holds every result only when the caller asked to keep
    them (the CLI prints them); a scheduled sweep keeps counts, so a 50,000-probe sweep does
    not hold 50,000 evidence dicts in memory."""

    results: list[Result] = field(default_factory=list)
    flips: list[Flip] = field(default_factory=list)
    sweep_id: int | None = None
    seconds: float = 0.0
    stored: int = 0
    total: int = 0
    status_counts: dict[Status, int] = field(default_factory=dict)
    dns_stats: dict[str, int] = field(default_factory=dict)
    processes: int = 1
    #: Stages run one after the other (prerequisites first: watchtower/probe/dependencies.py);
    #: a multi-process sweep starts `processes` workers per stage.
    stages: int = 1
    #: Per worker process (empty for an in-process sweep): CPU seconds, peak RSS in MiB.
    worker_cpu: list[float] = field(default_factory=list)
    worker_peak_rss_mb: list[float] = field(default_factory=list)

    def of(self, check_id: str) -> list[Result]:
        """The kept results of one check: a sweep also runs the prerequisites of the checks it
        was given (probe/dependencies.py), so `results` may hold more checks than asked for."""
        return [r for r in self.results if r.check == check_id]

    def add(self, result: Result, keep: bool) -> None:
        self.total += 1
        self.status_counts[result.status] = self.status_counts.get(result.status, 0) + 1
        if keep:
            self.results.append(result)

    def counts(self) -> dict[Status, int]:
        return dict(self.status_counts)


def select_checks(only: list[str] | None = None) -> dict[str, Check]:
    """All registered checks, or those whose id or family matches one of the globs."""
    checks = registry.checks()
    if not only:
        return checks
    return {cid: c for cid, c in checks.items()
            if any(fnmatch.fnmatchcase(cid, g) or c.meta.family == g for g in only)}


def staged_plan(fleet: Fleet, jobs: list[Job]) -> Prerequisites:
    """The sweep's plan of `jobs`: their prerequisites added (the registered checks, and any
    check given only in `jobs`), in stages. Its `jobs` is what the sweep will run: a caller
    showing progress counts those, not the jobs it asked for."""
    return Prerequisites(fleet, jobs, {**registry.checks(), **{j.check.meta.id: j.check
                                                             for j in jobs}})


def run_sweep(
    fleet: Fleet,
    store: Store | None,
    checks: dict[str, Check],
    *,
    targets: list[Target] | None = None,
    schedule: str = "manual",
    kind: str = "scheduled",
    on_result: Callable[[Result], None] | None = None,
    on_arrival: Callable[[Result], None] | None = None,
    on_flip: Callable[[Flip], None] | None = None,
    stop: threading.Event | None = None,
    jobs: list[Job] | None = None,
    on_stored: Callable[[list[Result]], object] | None = None,
    keep_results: bool = True,
) -> SweepOutcome:
    """Run `jobs` (or every applicable pair), storing results as they come. `kind` is what the
    store keeps of the sweep: `scheduled` (the scheduler), `adhoc` (`watchtower check`) or
    `verify` (a remediation's verification); figures over time count scheduled sweeps only."""
    started = time.monotonic()
    if jobs is None:
        jobs = plan_jobs(fleet, checks, targets)
    plan = staged_plan(fleet, jobs)
    jobs = plan.jobs
    outcome = SweepOutcome(stages=len(plan.stages))
    if store is not None:
        outcome.sweep_id = store.begin_sweep(schedule, len(jobs), kind)
    batch = _Batch(store, outcome, on_result, on_flip, on_stored)
    processes = processes_for(fleet, jobs)
    results, pool, clients = _staged_results(fleet, plan, processes, stop, batch.flush)
    state = "done"
    try:
        for result in results:
            outcome.add(result, keep_results)
            if on_arrival is not None:  # not yet stored: counters that must not lag a batch
                on_arrival(result)
            batch.append(result)
            if batch.due():
                batch.flush()
        if stop is not None and stop.is_set():
            state = "interrupted"
        batch.flush()
    except BaseException:
        state = "interrupted"
        raise
    finally:
        _finish(store, outcome, state)
        _wind_up(outcome, processes, pool, clients)
        outcome.seconds = time.monotonic() - started
    return outcome


class _Batch:
    """Results waiting to be stored together: flushed every BATCH_SIZE results or
    BATCH_SECONDS, then handed to the flip, stored and result callbacks."""

    def __init__(self, store: Store | None, outcome: SweepOutcome,
                 on_result: Callable[[Result], None] | None,
                 on_flip: Callable[[Flip], None] | None,
                 on_stored: Callable[[list[Result]], object] | None) -> None:
        self.store = store
        self.outcome = outcome
        self.on_result = on_result
        self.on_flip = on_flip
        self.on_stored = on_stored
        self.batch: list[Result] = []
        self.last_flush = time.monotonic()

    def append(self, result: Result) -> None:
        self.batch.append(result)

    def due(self) -> bool:
        return (len(self.batch) >= BATCH_SIZE
                or time.monotonic() - self.last_flush > BATCH_SECONDS)

    def flush(self) -> None:
        store, outcome, batch = self.store, self.outcome, self.batch
        availability.stamp(batch)
        if store is not None and batch:
            flips = store.record(batch, outcome.sweep_id)
            outcome.stored += len(batch)
            log.debug("sweep %s: stored %d results (%d so far)", outcome.sweep_id, len(batch),
                      outcome.stored)
            outcome.flips.extend(flips)
            for flip in flips:
                if flip.old is not None:
                    log.info("%s on %s: %s -> %s: %s", flip.check, flip.target, flip.old,
                             flip.new, flip.reason)
                if self.on_flip is not None:
                    self.on_flip(flip)
            if self.on_stored is not None:
                # After the results are committed: alert thresholds count stored results
                # only, and their notices are written with the alert state in one transaction.
                self.on_stored(batch)
        if self.on_result is not None:
            for r in batch:
                self.on_result(r)
        batch.clear()
        self.last_flush = time.monotonic()


def _finish(store: Store | None, outcome: SweepOutcome, state: str) -> None:
    """Close the sweep's row with its counts and state; a failure here is logged, not raised
    over the sweep's own outcome."""
    if store is not None and outcome.sweep_id is not None:
        try:
            store.finish_sweep(outcome.sweep_id, outcome.counts(), state)
        except Exception as exc:
            log.error("could not close sweep %s: %s", outcome.sweep_id, exc)


def _staged_results(fleet: Fleet, plan: Prerequisites, processes: int,
                    stop: threading.Event | None, flush: Callable[[], None]
                    ) -> tuple[Iterator[Result], ProcessRunner | None, SweepClients | None]:
    """The plan's results as its stages run, over worker processes or in this one. The network
    clients live where the probes run: here, or in each worker process."""

    def stopped() -> bool:
        return stop is not None and stop.is_set()

    if processes > 1:
        pool = ProcessRunner(processes, fleet.probe.concurrency, fleet, plan.jobs)
        log.debug("sweep of %d probes over %d worker processes", len(plan.jobs), processes)
        return run_staged(plan, lambda stage: pool.run(stage, stop), stopped,
                          flush), pool, None
    clients = SweepClients(fleet)
    runner, context = Runner(fleet.probe.concurrency), clients.context
    return run_staged(plan, lambda stage: runner.run(stage, context, stop), stopped,
                      flush), None, clients


def _wind_up(outcome: SweepOutcome, processes: int, pool: ProcessRunner | None,
             clients: SweepClients | None) -> None:
    """The sweep's accounts from where its probes ran (the worker processes or this one's
    clients, which are closed here)."""
    outcome.processes = processes
    if pool is not None:
        pool.close()
        outcome.dns_stats = pool.dns_stats
        outcome.worker_cpu = pool.worker_cpu
        outcome.worker_peak_rss_mb = pool.worker_peak_rss_mb
    if clients is not None:
        outcome.dns_stats = clients.dns.cache_stats
        clients.close()
