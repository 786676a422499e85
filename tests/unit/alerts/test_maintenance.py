"""Maintenance windows: one-off and recurring (with time zone), selectors, config errors."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.unit.alerts.helpers import fleet
from watchtower.alerting.maintenance import applies, is_open, silencing
from watchtower.errors import ConfigError

UTC = dt.UTC


def window(**keys: object):  # type: ignore[no-untyped-def]
    lines = ['[[maintenance]]', 'name = "w"']
    for k, v in keys.items():
        lines.append(f"{k} = {v}")
    return fleet("\n".join(lines) + "\n").maintenance[0]


def test_one_off_window_with_local_time() -> None:
    w = window(start='"2026-03-01T02:00:00"', end='"2026-03-01T04:00:00"',
               timezone='"Europe/Berlin"')
    assert not is_open(w, dt.datetime(2026, 3, 1, 0, 59, tzinfo=UTC))
    assert is_open(w, dt.datetime(2026, 3, 1, 1, 0, tzinfo=UTC))  # 02:00 in Berlin (CET)
    assert not is_open(w, dt.datetime(2026, 3, 1, 3, 0, tzinfo=UTC))  # end is exclusive


def test_recurring_window_follows_local_time_across_dst() -> None:
    w = window(cron='"0 3 * * SUN"', duration=120, timezone='"Europe/Berlin"')
    # winter (CET, UTC+1): Sunday 2026-03-22 03:00 local = 02:00 UTC
    assert is_open(w, dt.datetime(2026, 3, 22, 2, 30, tzinfo=UTC))
    assert not is_open(w, dt.datetime(2026, 3, 22, 1, 59, tzinfo=UTC))
    assert not is_open(w, dt.datetime(2026, 3, 22, 4, 0, tzinfo=UTC))
    # summer (CEST, UTC+2): Sunday 2026-04-05 03:00 local = 01:00 UTC
    assert is_open(w, dt.datetime(2026, 4, 5, 1, 0, tzinfo=UTC))
    assert not is_open(w, dt.datetime(2026, 4, 5, 3, 0, tzinfo=UTC))
    # not on a Monday
    assert not is_open(w, dt.datetime(2026, 4, 6, 1, 30, tzinfo=UTC))


def test_selectors() -> None:
    w = window(targets='["*.bravo.test"]', tags='["customer:acme"]', checks='["web", "dns.ns.*"]',
               start='"2026-01-01T00:00:00Z"', end='"2027-01-01T00:00:00Z"')
    assert applies(w, "web.hsts", "web", "video.bravo.test", ["customer:acme"])
    assert applies(w, "dns.ns.count", "dns", "x.bravo.test", ["customer:acme", "x"])
    assert not applies(w, "dns.soa.timers", "dns", "x.bravo.test", ["customer:acme"])
    assert not applies(w, "web.hsts", "web", "alpha.test", ["customer:acme"])
    assert not applies(w, "web.hsts", "web", "video.bravo.test", [])
    now = dt.datetime(2026, 6, 1, tzinfo=UTC)
    assert silencing([w], "web.hsts", "web", "video.bravo.test", ["customer:acme"], now) == "w"
    assert silencing([w], "web.hsts", "web", "alpha.test", [], now) is None


@pytest.mark.parametrize(("keys", "message"), [
    ({"start": '"2026-01-01T00:00:00Z"'}, "needs both start and end"),
    ({"start": '"2026-01-02T00:00:00Z"', "end": '"2026-01-01T00:00:00Z"'}, "end must be after"),
    ({"cron": '"0 3 * * SUN"'}, "needs both cron and duration"),
    ({"cron": '"61 3 * * *"', "duration": 5}, "invalid cron"),
    ({"cron": '"0 3 * * *"', "duration": 5, "timezone": '"Mars/Olympus"'}, "unknown time zone"),
    ({"cron": '"0 3 * * *"', "duration": 5, "start": '"2026-01-01T00:00:00Z"',
      "end": '"2026-01-02T00:00:00Z"'}, "not both"),
])
def test_bad_windows_are_config_errors(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        window(**keys)
    assert any(message in p and "maintenance[0]" in p for p in info.value.problems), info.value.problems
