"""The procrastinate app: its connection to the store's PostgreSQL, its two tasks, and a
worker loop that waits for the database instead of dying with it.

Tasks:
- `watchtower.tick` (periodic, every `[scaleout] tick` seconds, queue `watchtower.scheduler`,
  lock `watchtower.tick`): procrastinate's periodic deferrer inserts one job per tick however
  many schedulers run (its `procrastinate_periodic_defers` key), the lock runs ticks one at a
  time, and whichever scheduler claims it does the tick's work (`Handler.tick`).
- `watchtower.probe` (queue `watchtower.vantage.NAME`): one chunk of one group's pairs for one
  vantage; an agent claims it and runs it (`Handler.probe`). A job that raised (the database
  away while recording) is retried; one whose agent died is returned to its queue by the tick
  (`retry_stalled`) once the agent's heartbeat is `[scaleout] lease` seconds old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import procrastinate

from watchtower.scaleout.ticks import PROBE_TASK, SCHEDULER_QUEUE, TICK_TASK
from watchtower.store.vantages import conninfo

log = logging.getLogger(__name__)

#: Seconds between attempts to reach the database when it is away.
RECONNECT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class ProbeJob:
    """What a probe job carries (JSON in the queue)."""

    group: str
    tick: int
    deadline: int
    #: (check id, target key `kind:name`) pairs
    pairs: list[tuple[str, str]]

    def kwargs(self) -> dict[str, Any]:
        return {"group": self.group, "tick": self.tick, "deadline": self.deadline,
                "pairs": [list(p) for p in self.pairs]}


class Handler(Protocol):
    """The work of a role: the scheduler's tick, an agent's probe job."""

    async def tick(self, app: procrastinate.App, timestamp: int) -> None: ...

    def probe(self, job: ProbeJob) -> None: ...


def make_app(url: str, handler: Handler, tick_seconds: int | None) -> procrastinate.App:
    """The app with both tasks bound to `handler`; the tick is periodic only with
    `tick_seconds` (the scheduler's app: an agent's worker must not defer ticks, which no
    scheduler might be there to run)."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=conninfo(url), min_size=1, max_size=4))

    @app.task(name=TICK_TASK, queue=SCHEDULER_QUEUE, lock=TICK_TASK)
    async def tick(timestamp: int) -> None:
        await handler.tick(app, timestamp)

    if tick_seconds is not None:
        app.periodic(cron=f"* * * * * */{tick_seconds}", periodic_id="tick")(tick)

    @app.task(name=PROBE_TASK, retry=procrastinate.RetryStrategy(max_attempts=3, wait=1))
    def probe(group: str, tick: int, deadline: int, pairs: list[list[str]]) -> None:
        handler.probe(ProbeJob(group, tick, deadline, [(c, t) for c, t in pairs]))

    del tick, probe
    return app


async def defer_probes(app: procrastinate.App, jobs: Sequence[tuple[str, ProbeJob]]) -> None:
    """Queue each (queue, job)."""
    task = app.tasks[PROBE_TASK]
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for queue, job in jobs:
        by_queue.setdefault(queue, []).append(job.kwargs())
    for queue, kwargs in by_queue.items():
        await task.configure(queue=queue).batch_defer_async(*kwargs)


async def retry_stalled(app: procrastinate.App, lease: float) -> int:
    """Return to their queue the probe jobs of agents silent for `lease` seconds."""
    stalled = list(await app.job_manager.get_stalled_jobs(task_name=PROBE_TASK,
                                                          seconds_since_heartbeat=lease))
    for job in stalled:
        log.warning("job %s on %s: its agent stopped answering; queued again", job.id,
                    job.queue)
        await app.job_manager.retry_job(job)
    return len(stalled)


def ensure_schema(app: procrastinate.App, present: Callable[[], bool]) -> None:
    """procrastinate's tables, once (a second process racing to create them loses quietly)."""
    if present():
        return
    try:
        with app.open():
            app.schema_manager.apply_schema()
    except Exception:
        if not present():
            raise


def serve(make: Callable[[], procrastinate.App], *, queues: list[str], name: str,
          concurrency: int, lease: float, stop: threading.Event,
          on_error: Callable[[BaseException], None] | None = None) -> None:
    """Run a worker on `queues` until `stop`; the database going away ends one worker, and
    the loop starts another once the database answers again (jobs already claimed return to
    their queue after the lease)."""
    logging.getLogger("procrastinate").setLevel(logging.WARNING)  # a line per job otherwise
    while not stop.is_set():
        try:
            asyncio.run(_work(make(), queues, name, concurrency, lease, stop))
        except Exception as exc:  # the database away: wait, then resume
            if on_error is not None:
                on_error(exc)
            log.warning("worker %s: %s; retrying in %gs", name, exc, RECONNECT_SECONDS)
            stop.wait(RECONNECT_SECONDS)
        else:
            if not stop.is_set():  # the worker ended by itself: start it again
                stop.wait(RECONNECT_SECONDS)


async def _work(app: procrastinate.App, queues: list[str], name: str, concurrency: int,
                lease: float, stop: threading.Event) -> None:
    async with app.open_async():
        worker = asyncio.create_task(app.run_worker_async(
            queues=queues, name=name, concurrency=concurrency, wait=True,
            fetch_job_polling_interval=1.0, install_signal_handlers=False,
            update_heartbeat_interval=max(0.5, lease / 4), stalled_worker_timeout=lease,
            delete_jobs="successful", shutdown_graceful_timeout=lease))
        while not worker.done():
            if stop.is_set():
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
                return
            await asyncio.sleep(0.2)
        worker.result()
