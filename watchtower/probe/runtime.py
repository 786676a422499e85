"""What only the running scheduler knows: lag between a sweep's scheduled time and its start,
runs missed, how long the last sweep of each group took. /metrics reads it (watchtower/metrics/);
it lives with the scheduler because the scheduler is what it listens to."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.events import JobEvent
    from apscheduler.schedulers.base import BaseScheduler


@dataclass
class RuntimeStats:
    """What only the running process knows: scheduler lag, missed runs, sweep times.

    `attach()` listens to an APScheduler: on submission, lag = now - the scheduled run time
    (jitter is already part of the scheduled time, so lag is pure delay: a busy executor, a
    blocked GIL, a suspended host).
    """

    lag: dict[str, float] = field(default_factory=dict)
    lag_max: dict[str, float] = field(default_factory=dict)
    missed: dict[str, int] = field(default_factory=dict)
    sweep_at: dict[str, float] = field(default_factory=dict)
    sweep_seconds: dict[str, float] = field(default_factory=dict)
    on_lag: Callable[[str, float], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, scheduler: BaseScheduler) -> None:
        from apscheduler.events import EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED

        scheduler.add_listener(self._event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED)

    def _event(self, event: JobEvent) -> None:
        from apscheduler.events import EVENT_JOB_MISSED

        with self.lock:
            if event.code == EVENT_JOB_MISSED:
                self.missed[event.job_id] = self.missed.get(event.job_id, 0) + 1
                return
            times = getattr(event, "scheduled_run_times", None) or []
            if not times:
                return
            lag = max(0.0, time.time() - max(t.timestamp() for t in times))
            self.lag[event.job_id] = lag
            self.lag_max[event.job_id] = max(lag, self.lag_max.get(event.job_id, 0.0))
        if self.on_lag is not None:
            self.on_lag(event.job_id, lag)

    def sweep_done(self, group: str, seconds: float) -> None:
        with self.lock:
            self.sweep_at[group] = time.time()
            self.sweep_seconds[group] = seconds
