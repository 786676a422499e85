"""Which groups a tick makes due (watchtower/scaleout/ticks.py): every scheduler computes the
same answer from the same tick, each due instant is hit by exactly one tick."""

from __future__ import annotations

import pytest

from watchtower.probe.scheduler import Group
from watchtower.scaleout.ticks import chunked, deadline_of, is_due, queue_of

EVERY_60 = Group("every:60s", ("a",), 60.0, None)
HOURLY = Group("cron:5 * * * *", ("b",), None, "5 * * * *")


@pytest.mark.parametrize("period", [1, 5, 7])
@pytest.mark.parametrize("group", [EVERY_60, HOURLY])
def test_each_instant_is_due_at_one_tick(group: Group, period: int) -> None:
    start = 1_800_000_000 - 1_800_000_000 % period
    ticks = range(start, start + 2 * 3600, period)
    due = [t for t in ticks if is_due(group, t, period)]
    expected = 2 * 3600 // (60 if group.interval else 3600)
    assert len(due) == expected
    assert len(set(due)) == len(due)


def test_deadline_is_one_interval_or_the_next_instant() -> None:
    assert deadline_of(EVERY_60, 1_800_000_040, 5) == 1_800_000_100
    tick = 1_800_000_000 - 1_800_000_000 % 3600 + 300  # :05
    assert deadline_of(HOURLY, tick, 5) == tick + 3600


def test_queues_and_chunks() -> None:
    assert queue_of("ams") == "watchtower.vantage.ams"
    assert list(chunked([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
