"""Pure helpers of the tick: which groups are due, which queue a vantage reads, chunks.

The scheduler runs once per tick (a procrastinate periodic task every `[scaleout] tick`
seconds, deferred once per tick however many schedulers run). A group of interval I is due at
the tick t when a multiple of I lies in (t - tick, t]; a cron group when one of its instants
does. Every scheduler computes the same answer from the same tick, so which one runs it does
not matter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from croniter import croniter

from watchtower.probe.scheduler import Group

T = TypeVar("T")

SCHEDULER_QUEUE = "watchtower.scheduler"
PROBE_TASK = "watchtower.probe"
TICK_TASK = "watchtower.tick"


def queue_of(vantage: str) -> str:
    """The queue the agents of `vantage` claim jobs from."""
    return f"watchtower.vantage.{vantage}"


def is_due(group: Group, tick: int, period: int) -> bool:
    if group.cron is not None:
        previous = croniter(group.cron, tick + 1).get_prev(float)
        return bool(tick - period < previous <= tick)
    assert group.interval is not None
    interval = max(1, round(group.interval))
    return tick // interval != (tick - period) // interval


def deadline_of(group: Group, tick: int, period: int) -> int:
    """When the tick's jobs of `group` are stale: one interval later (a cron group: its next
    instant); a job not started by then is dropped, not run late."""
    if group.cron is not None:
        return int(croniter(group.cron, tick).get_next(float))
    assert group.interval is not None
    return tick + max(period, round(group.interval))


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
