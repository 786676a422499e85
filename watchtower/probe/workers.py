"""Large sweeps split over worker processes, one shard of domains each.

Why: a probe is mostly waiting, but what it does between waits (building DNS messages,
TLS bookkeeping, parsing, judging) holds the interpreter's lock, so one process tops out
near one core however many probe threads it runs (measured: 0.7-0.9 core). Shards are cut
by the registrable domain of each target, so the checks that share DNS answers, fetched
pages and connections stay in one process and keep sharing them.

Each worker is forked from a forkserver that imported watchtower and its checks once, runs
its shard with the ordinary `Runner` (same watchdog, same isolation of a hung or crashing
check) and streams results back in small batches. The parent stores them as they come, as
it does for an in-process sweep. A worker that dies takes only its unreported pairs with it:
each becomes an `error` result naming the exit, never a silent gap.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import resource
import signal
import sys
import threading
import time
import types
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

from watchtower.config import Fleet
from watchtower.model import Result, Target, utcnow
from watchtower.probe import registry
from watchtower.probe.api import Check
from watchtower.probe.clients import SweepClients
from watchtower.probe.runner import Job, Runner, error_result, locality

log = logging.getLogger(__name__)

#: Below this many probes a sweep stays in one process (forking costs more than it saves).
MIN_JOBS = 200
#: Results a worker sends per message, and the longest it holds a partial batch.
BATCH = 25
BATCH_SECONDS = 0.2

_context = multiprocessing.get_context("forkserver")
# The forkserver imports this module once and warms it (below): every worker forked from it
# starts with the checks loaded and the Public Suffix List parsed.
_context.set_forkserver_preload(["watchtower.probe.warm"])

JobSpec = tuple[str, Target, float]
#: A running worker's pipe -> (its process, the (check, target) pairs it has not reported).
Owned = dict[Connection, tuple[Any, set[tuple[str, str]]]]


def prestart() -> None:
    """Start the workers' forkserver now (it imports and warms watchtower once, ~1 s), so the
    first large sweep does not wait for it. `watchtower run` calls this at start-up."""
    from multiprocessing import forkserver

    forkserver.ensure_running()


def processes_for(fleet: Fleet, jobs: list[Job]) -> int:
    """How many worker processes this sweep gets (1: run in this process)."""
    wanted = fleet.probe.sweep_processes or (os.cpu_count() or 1)
    if wanted <= 1 or len(jobs) < MIN_JOBS or not _registered(jobs):
        return 1
    return min(wanted, len({locality(j.target) for j in jobs}))


def _registered(jobs: list[Job]) -> bool:
    """Workers rebuild checks from the registry by id: only registered checks can go."""
    known = registry.checks()
    return all(type(known.get(j.check.meta.id)) is type(j.check) for j in jobs)


def shard(jobs: list[Job], parts: int) -> list[list[Job]]:
    """Jobs grouped by domain, domains dealt to the least-loaded shard (largest first), the
    plan's order kept inside each shard."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(locality(job.target), []).append(job)
    shards: list[list[Job]] = [[] for _ in range(parts)]
    for group in sorted(groups.values(), key=len, reverse=True):
        min(shards, key=len).extend(group)
    order = {id(job): i for i, job in enumerate(jobs)}
    return [sorted(s, key=lambda j: order[id(j)]) for s in shards if s]


class ProcessRunner:
    """Runs a sweep's jobs in `processes` forked workers; yields results as they arrive."""

    def __init__(self, processes: int, concurrency: int) -> None:
        self.processes = processes
        self.concurrency = concurrency
        self.dns_stats: dict[str, int] = {}
        self.workers: list[Any] = []
        #: Per worker, as it reported at its end: CPU seconds and peak RSS in MiB.
        self.worker_cpu: list[float] = []
        self.worker_peak_rss_mb: list[float] = []

    def run(self, jobs: list[Job], fleet: Fleet, stop: threading.Event | None = None
            ) -> Iterator[Result]:
        shards = shard(jobs, self.processes)
        per_worker = max(1, -(-self.concurrency // len(shards)))
        waiting: dict[tuple[str, str], Job] = {
            (j.check.meta.id, j.target.key): j for j in jobs}
        owned: Owned = {}
        try:
            for part in shards:
                self._start(part, fleet, per_worker, owned)
            while owned:
                if stop is not None and stop.is_set():
                    return
                for conn in multiprocessing.connection.wait(list(owned), timeout=0.2):
                    assert isinstance(conn, Connection)
                    yield from self._receive(conn, owned, waiting)
        finally:
            self._end_workers(owned)

    def _start(self, part: list[Job], fleet: Fleet, per_worker: int, owned: Owned) -> None:
        """Fork one worker for a shard; `owned` maps its pipe to it and the pairs it owes."""
        specs: list[JobSpec] = [(j.check.meta.id, j.target, j.timeout) for j in part]
        receiver, sender = _context.Pipe(duplex=False)
        proc = _context.Process(target=_worker, args=(sender, fleet, specs, per_worker),
                                name="watchtower-sweep-worker", daemon=True)
        _start_without_main(proc)
        sender.close()
        owned[receiver] = (proc, {(cid, t.key) for cid, t, _ in specs})
        self.workers.append(proc)

    def _receive(self, conn: Connection, owned: Owned, waiting: dict[tuple[str, str], Job]
                 ) -> Iterator[Result]:
        """One message from a worker: a batch of results, its accounts, or its end (then its
        unreported pairs become error results)."""
        try:
            message = conn.recv()
        except (EOFError, OSError):
            proc, pairs = owned.pop(conn)
            conn.close()
            proc.join(5)
            yield from _lost(proc.exitcode, [waiting.pop(k) for k in sorted(pairs)
                                             if k in waiting])
            return
        if isinstance(message, dict):  # the worker's last word: its accounts
            self._account(message)
            return
        for result in message:
            if waiting.pop((result.check, result.target.key), None) is not None:
                yield result

    def _account(self, message: dict[str, Any]) -> None:
        for key, value in message["dns"].items():
            self.dns_stats[key] = self.dns_stats.get(key, 0) + value
        self.worker_cpu.append(message["cpu"])
        self.worker_peak_rss_mb.append(message["peak_rss_mb"])

    def _end_workers(self, owned: Owned) -> None:
        """Close the pipes and stop every worker still running (terminate, then kill)."""
        for conn in owned:
            conn.close()
        for proc in self.workers:
            if proc.is_alive():
                proc.terminate()
        for proc in self.workers:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(1)


def _lost(exitcode: int | None, jobs: list[Job]) -> Iterator[Result]:
    """Error results for the pairs a worker never reported before it ended."""
    if not jobs:
        return
    how = (f"signal {-exitcode}" if exitcode is not None and exitcode < 0
           else f"exit code {exitcode}")
    reason = f"sweep worker process ended ({how}) before reporting this probe"
    log.error("%s: %d probes", reason, len(jobs))
    at = utcnow()
    for job in jobs:
        yield error_result(job, reason, "worker-died", None, at)


_main_lock = threading.Lock()


def _start_without_main(proc: Any) -> None:
    """Start a worker without multiprocessing re-running the parent's `__main__` in it.

    By default a forkserver child imports the parent's main script again (as `__mp_main__`)
    so that objects defined there unpickle. A worker needs nothing from it, and whatever
    `__main__` is at that moment (a script without a `__name__` guard, a Streamlit page a
    test runs as `__main__`) would run in every worker and could kill it. So the main module
    is replaced, for the instant of the start, by an empty one that names no file; the lock
    keeps two sweeps starting workers at once from restoring each other's stand-in.
    """
    with _main_lock:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            proc.start()
        finally:
            sys.modules["__main__"] = main


def _worker(conn: Connection, fleet: Fleet, specs: list[JobSpec], concurrency: int) -> None:
    """A worker's whole life: probe its shard, stream results, then its DNS stats."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a sweep stops
    checks: dict[str, Check] = registry.checks()
    jobs = [Job(checks[cid], target, timeout) for cid, target, timeout in specs]
    clients = SweepClients(fleet)
    batch: list[Result] = []
    last = time.monotonic()
    try:
        for result in Runner(concurrency).run(jobs, clients.context):
            batch.append(result)
            if len(batch) >= BATCH or time.monotonic() - last > BATCH_SECONDS:
                conn.send(batch)
                batch, last = [], time.monotonic()
        if batch:
            conn.send(batch)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        conn.send({"dns": dict(clients.dns.cache_stats), "cpu": usage.ru_utime + usage.ru_stime,
                   "peak_rss_mb": usage.ru_maxrss / 1024})
    finally:
        clients.close()
        conn.close()

