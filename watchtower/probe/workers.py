"""Large sweeps split over worker processes, one shard of domains each.

Why: a probe is mostly waiting, but what it does between waits (building DNS messages,
TLS bookkeeping, parsing, judging) holds the interpreter's lock, so one process tops out
near one core however many probe threads it runs (measured: 0.7-0.9 core). Shards are cut
by the registrable domain of each target, so the checks that share DNS answers, fetched
pages and connections stay in one process and keep sharing them.

Each worker is forked from a forkserver that imported watchtower and its checks once, lives
for the whole sweep (every stage of its shard, on one set of clients), runs each stage's part
with the ordinary `Runner` (same watchdog, same isolation of a hung or crashing check) and
streams results back in small batches. The parent stores them as they come, as
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
from dataclasses import dataclass, field
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
#: What a worker sends when it has reported every pair of the stage it was handed.
STAGE_DONE = "stage-done"


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


@dataclass
class _Slot:
    """One shard's worker process, kept for the whole sweep: its pipe, whether it is running a
    stage, and the pairs of that stage it has not reported."""

    proc: Any = None
    conn: Connection | None = None
    busy: bool = False
    owes: set[tuple[str, str]] = field(default_factory=set)

    def alive(self) -> bool:
        return self.proc is not None and self.conn is not None and self.proc.is_alive()


class ProcessRunner:
    """Runs a sweep's stages in `processes` forked workers; yields results as they arrive.

    The shards are dealt once, over every job of the sweep's plan (all its stages), and each
    shard's worker lives for the whole sweep: a domain's prerequisites and its dependents run
    in the same process, on the same clients, so the facts a sweep gathers once (DNS answers,
    handshakes, fetched pages, host state) are shared across stages as in one process, and a
    stage costs a message, not a fork and a new set of clients. A worker that dies is
    replaced, with fresh clients, by the next stage that has work for its shard.
    """

    def __init__(self, processes: int, concurrency: int, fleet: Fleet,
                 plan: list[Job]) -> None:
        self.fleet = fleet
        shards = shard(plan, processes)
        self.processes = len(shards)
        self.per_worker = max(1, -(-concurrency // max(1, self.processes)))
        self.home = {locality(j.target): i for i, part in enumerate(shards) for j in part}
        self.slots = [_Slot() for _ in range(self.processes)]
        self.dns_stats: dict[str, int] = {}
        self.workers: list[Any] = []
        #: Per worker, as it reported at its end: CPU seconds and peak RSS in MiB.
        self.worker_cpu: list[float] = []
        self.worker_peak_rss_mb: list[float] = []

    def shard_of(self, target: Target) -> int:
        """The shard (and worker slot) a target's jobs run in."""
        return self.home.get(locality(target), 0)

    def run(self, jobs: list[Job], stop: threading.Event | None = None) -> Iterator[Result]:
        """One stage: each shard's part to its worker, results as they come."""
        waiting: dict[tuple[str, str], Job] = {
            (j.check.meta.id, j.target.key): j for j in jobs}
        parts: dict[int, list[Job]] = {}
        for job in jobs:
            parts.setdefault(self.shard_of(job.target), []).append(job)
        active: dict[Connection, _Slot] = {}
        for index, part in sorted(parts.items()):
            slot = self.slots[index]
            if self._hand(slot, part) and slot.conn is not None:
                active[slot.conn] = slot
            else:
                yield from self._died(slot, waiting)
        while active:
            if stop is not None and stop.is_set():
                return
            for conn in multiprocessing.connection.wait(list(active), timeout=0.2):
                assert isinstance(conn, Connection)
                slot = active[conn]
                yield from self._receive(slot, waiting)
                if not slot.busy:
                    del active[conn]

    def _hand(self, slot: _Slot, part: list[Job]) -> bool:
        """Send a stage's part to the slot's worker (started, or replaced, if need be)."""
        if not slot.alive():
            self._start(slot)
        specs: list[JobSpec] = [(j.check.meta.id, j.target, j.timeout) for j in part]
        slot.owes = {(cid, t.key) for cid, t, _ in specs}
        slot.busy = True
        try:
            assert slot.conn is not None
            slot.conn.send(specs)
        except OSError:
            return False
        return True

    def _start(self, slot: _Slot) -> None:
        """Fork the worker of a slot, with a pipe both ways (stages in, results out)."""
        if slot.conn is not None:
            slot.conn.close()
        mine, theirs = _context.Pipe(duplex=True)
        proc = _context.Process(target=_worker, args=(theirs, self.fleet, self.per_worker),
                                name="watchtower-sweep-worker", daemon=True)
        _start_without_main(proc)
        theirs.close()
        slot.proc, slot.conn, slot.busy = proc, mine, False
        self.workers.append(proc)

    def _receive(self, slot: _Slot, waiting: dict[tuple[str, str], Job]) -> Iterator[Result]:
        """One message from a busy worker: a batch of results or the end of its stage; a
        worker gone (EOF) leaves its unreported pairs as error results."""
        assert slot.conn is not None
        try:
            message = slot.conn.recv()
        except (EOFError, OSError):
            yield from self._died(slot, waiting)
            return
        if message == STAGE_DONE:
            slot.busy = False
            return
        for result in message:
            key = (result.check, result.target.key)
            slot.owes.discard(key)
            if waiting.pop(key, None) is not None:
                yield result

    def _died(self, slot: _Slot, waiting: dict[tuple[str, str], Job]) -> Iterator[Result]:
        proc, owed = slot.proc, slot.owes
        if slot.conn is not None:
            slot.conn.close()
        slot.conn, slot.busy, slot.owes = None, False, set()
        if proc is not None:
            proc.join(5)
        yield from _lost(None if proc is None else proc.exitcode,
                         [waiting.pop(k) for k in sorted(owed) if k in waiting])

    def close(self) -> None:
        """End the sweep's workers: an idle one is asked to stop and gives its accounts; one
        still busy (an interrupted sweep) is terminated, then killed."""
        for slot in self.slots:
            if slot.alive() and not slot.busy:
                self._account(slot)
            if slot.conn is not None:
                slot.conn.close()
                slot.conn = None
        for proc in self.workers:
            if proc.is_alive():
                proc.terminate()
        for proc in self.workers:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(1)

    def _account(self, slot: _Slot) -> None:
        """Ask an idle worker to end, and keep its accounts (DNS stats, CPU, peak RSS)."""
        assert slot.conn is not None
        try:
            slot.conn.send(None)
            if not slot.conn.poll(10):
                return
            message = slot.conn.recv()
        except (EOFError, OSError):
            return
        for key, value in message["dns"].items():
            self.dns_stats[key] = self.dns_stats.get(key, 0) + value
        self.worker_cpu.append(message["cpu"])
        self.worker_peak_rss_mb.append(message["peak_rss_mb"])
        if slot.proc is not None:
            slot.proc.join(5)


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


def _worker(conn: Connection, fleet: Fleet, concurrency: int) -> None:
    """A worker's whole life: one set of clients for the sweep; per stage, probe the part it
    is handed, stream results and say the stage is done; at the end (None), its accounts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a sweep stops
    checks: dict[str, Check] = registry.checks()
    clients = SweepClients(fleet)
    runner = Runner(concurrency)
    try:
        while (specs := conn.recv()) is not None:
            jobs = [Job(checks[cid], target, timeout) for cid, target, timeout in specs]
            batch: list[Result] = []
            last = time.monotonic()
            for result in runner.run(jobs, clients.context):
                batch.append(result)
                if len(batch) >= BATCH or time.monotonic() - last > BATCH_SECONDS:
                    conn.send(batch)
                    batch, last = [], time.monotonic()
            if batch:
                conn.send(batch)
            conn.send(STAGE_DONE)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        conn.send({"dns": dict(clients.dns.cache_stats), "cpu": usage.ru_utime + usage.ru_stime,
                   "peak_rss_mb": usage.ru_maxrss / 1024})
    except (EOFError, OSError):
        pass  # the parent went away or closed the pipe: nothing left to report to
    finally:
        clients.close()
        conn.close()
