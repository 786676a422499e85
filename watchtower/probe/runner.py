"""Runs (check, target) pairs: bounded concurrency, a deadline per probe, isolation.

Each probe gets a deadline that its network calls honour. A probe that ignores it (a bug, a
library that blocks) is caught by the watchdog: it becomes an `error` result at its deadline, its
thread is abandoned (daemon, its late result discarded) and a fresh worker takes its place, so
one hung check never delays the others beyond its own timeout. Crashes become `error` results
for that pair alone.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from watchtower.config import Fleet
from watchtower.errors import ProbeError
from watchtower.model import Finding, Result, Status, Target, utcnow
from watchtower.net.dns import is_ip
from watchtower.parsers import ParseError
from watchtower.parsers.domains import organizational_domain
from watchtower.probe.api import OBSERVED_AT, Check, ProbeContext

log = logging.getLogger(__name__)

WATCHDOG_GRACE = 0.5
#: Seconds between the watchdog's rounds (and the longest wait for a result between them).
WATCH_EVERY = 0.05


@dataclass(frozen=True, slots=True)
class Job:
    check: Check
    target: Target
    timeout: float


def execute(job: Job, ctx: ProbeContext) -> Result:
    """Gather, stamp the time of observation, judge, keep evidence; any failure to probe
    becomes an `error` result.

    `observed_at` (the probe's start, the same instant as `Result.at`) goes into the facts, for
    `judge` to read instead of the clock, and into the evidence, so that stored evidence judged
    again later gives the same verdict.
    """
    started = time.monotonic()
    at = utcnow()
    stamp = at.isoformat()
    meta = job.check.meta
    try:
        facts = job.check.gather(job.target, ctx)
        facts[OBSERVED_AT] = stamp
        verdict = job.check.judge(facts)
        evidence = job.check.evidence(facts)
        evidence[OBSERVED_AT] = stamp
    except ProbeError as exc:
        return error_result(job, exc.reason, exc.kind, started, at)
    except Exception as exc:  # isolation: a crashing check is an error for itself alone
        log.exception("check %s crashed on %s", meta.id, job.target.name)
        reason = f"check crashed: {type(exc).__name__}: {exc}"[:500]
        return error_result(job, reason, "crash", started, at)
    return Result(meta.id, meta.family, job.target, verdict.status, verdict.summary, evidence,
                  (time.monotonic() - started) * 1000, at, verdict.findings)


def timeout_result(job: Job, started_at_monotonic: float) -> Result:
    return error_result(job, f"timed out after {job.timeout:g}s", "timeout",
                        started_at_monotonic, utcnow())


def error_result(job: Job, reason: str, kind: str, started_at_monotonic: float | None,
                 at: dt.datetime) -> Result:
    """The one shape of a probe that could not run: status `error`, the reason as summary
    and finding, `{"error", "error_kind"}` as evidence; duration from `started_at_monotonic`
    (0 when the probe never started)."""
    duration = 0.0 if started_at_monotonic is None else \
        (time.monotonic() - started_at_monotonic) * 1000
    return Result(job.check.meta.id, job.check.meta.family, job.target, Status.ERROR, reason,
                  {"error": reason, "error_kind": kind}, duration, at,
                  [Finding(Status.ERROR, reason)])


class Runner:
    """Runs jobs on a bounded pool of worker threads with a watchdog."""

    def __init__(self, concurrency: int = 32) -> None:
        self.concurrency = max(1, concurrency)
        self.abandoned_threads = 0

    def run(
        self,
        jobs: Iterable[Job],
        context: Callable[[float], ProbeContext],
        stop: threading.Event | None = None,
    ) -> Iterator[Result]:
        """Yield results as they complete (not in job order)."""
        job_list = list(jobs)
        pool = _Pool(job_list, context, stop)
        total = len(job_list)
        if total == 0:
            return

        for _ in range(min(self.concurrency, total)):
            pool.spawn()

        emitted = 0
        watched = time.monotonic()
        while emitted < total:
            if stop is not None and stop.is_set():
                return
            try:
                _idx, result = pool.done.get(timeout=WATCH_EVERY)
                emitted += 1
                yield result
                if time.monotonic() - watched < WATCH_EVERY:
                    continue
            except queue.Empty:
                pass
            # Also while results stream in: a hung probe is reported at its deadline and its
            # place refilled, not when the others happen to pause.
            watched = time.monotonic()
            overdue, alive = pool.watchdog(watched)
            for _idx, _thread, started, job in overdue:
                log.warning("check %s on %s exceeded %gs; abandoned", job.check.meta.id,
                            job.target.name, job.timeout)
                self.abandoned_threads += 1
                emitted += 1
                yield timeout_result(job, started)
            if alive < self.concurrency and not pool.pending.empty():
                for _ in range(self.concurrency - alive):
                    pool.spawn()


class _Pool:
    """What one run's probe threads and its watchdog share: the queues, and under `lock` the
    probes running (thread, start, job), the pairs finished and the threads abandoned."""

    def __init__(self, job_list: list[Job], context: Callable[[float], ProbeContext],
                 stop: threading.Event | None) -> None:
        self.pending: queue.SimpleQueue[tuple[int, Job] | None] = queue.SimpleQueue()
        self.done: queue.SimpleQueue[tuple[int, Result]] = queue.SimpleQueue()
        for item in enumerate(job_list):
            self.pending.put(item)
        self.context = context
        self.stop = stop
        self.lock = threading.Lock()
        self.running: dict[int, tuple[threading.Thread, float, Job]] = {}
        self.finished: set[int] = set()
        self.abandoned: set[threading.Thread] = set()

    def worker(self) -> None:
        me = threading.current_thread()
        while True:
            if self.stop is not None and self.stop.is_set():
                return
            try:
                item = self.pending.get_nowait()
            except queue.Empty:
                return
            if item is None:
                return
            idx, job = item
            started = time.monotonic()
            with self.lock:
                self.running[idx] = (me, started, job)
            result = execute(job, self.context(started + job.timeout))
            with self.lock:
                self.running.pop(idx, None)
                if me in self.abandoned:
                    return  # the watchdog already reported this pair and replaced us
                self.finished.add(idx)
            self.done.put((idx, result))

    def spawn(self) -> None:
        t = threading.Thread(target=self.worker, name="watchtower-probe", daemon=True)
        t.start()

    def watchdog(self, now: float) -> tuple[list[tuple[int, threading.Thread, float, Job]], int]:
        """Abandon the probes past their deadline (plus grace): (those, probe threads alive)."""
        overdue: list[tuple[int, threading.Thread, float, Job]] = []
        with self.lock:
            for idx, (thread, started, job) in list(self.running.items()):
                if now > started + job.timeout + WATCHDOG_GRACE:
                    self.running.pop(idx)
                    self.abandoned.add(thread)
                    self.finished.add(idx)
                    overdue.append((idx, thread, started, job))
            alive = sum(1 for t in threading.enumerate()
                        if t.name == "watchtower-probe" and t not in self.abandoned)
        return overdue, alive


def plan_jobs(fleet: Fleet, checks: dict[str, Check], targets: list[Target] | None = None,
              only: Callable[[str], bool] | None = None) -> list[Job]:
    """Every applicable (check, target) pair, honouring `disabled` and timeout overrides.

    Ordered by the domain each target lives under, then target, then check: the pool works on
    a few domains at a time, so the checks that share a DNS question, a fetched page or a
    kept-alive connection ask for it close together (the shared answers are bounded, and
    connection pools keep recent hosts only).
    """
    jobs: list[Job] = []
    all_targets = targets if targets is not None else fleet.targets()
    chosen: list[tuple[Check, float]] = []
    for cid, check in checks.items():
        if only is not None and not only(cid):
            continue
        override = fleet.override_for(cid, check.meta.family)
        if override.disabled:
            continue
        chosen.append((check, override.timeout or check.meta.timeout))
    for target in sorted(all_targets, key=_locality_key):
        for check, timeout in chosen:
            if check.applies(target):
                jobs.append(Job(check, target, timeout))
    return jobs


def planned_families(fleet: Fleet, checks: dict[str, Check],
                     targets: list[Target] | None = None) -> set[tuple[str, str, str]]:
    """(target, kind, family) of every pair a sweep of `checks` plans: where a score without
    a result says `not run` rather than nothing (watchtower.compliance.score)."""
    return {(j.target.name, str(j.target.kind), j.check.meta.family)
            for j in plan_jobs(fleet, checks, targets)}


def _locality_key(target: Target) -> tuple[str, str, str]:
    return (locality(target), str(target.kind), target.name)


@functools.lru_cache(maxsize=65_536)
def locality(target: Target) -> str:
    """The registrable domain a target belongs to (its host's, by the Public Suffix List), or
    its name when it names no DNS host (a NixOS host called `web1`). Memoised by target kind
    and name: planning, sharding and ordering ask for every job of every sweep."""
    spec = target.spec
    host: str | None = None
    for attr in ("base_url", "url"):
        value = getattr(spec, attr, None)
        if isinstance(value, str) and "://" in value:
            host = urlsplit(value).hostname
            break
    if host is None:
        host = getattr(spec, "host", None) or target.name
    if "." not in host or is_ip(host):
        return host
    try:
        return organizational_domain(host)
    except ParseError:
        return host
