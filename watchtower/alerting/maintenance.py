"""Maintenance windows: when notifications stay quiet while probing goes on.

A window silences *notifications* only. Checks keep running and the alert state keeps counting,
so the history shows what happened during the upgrade and, when the window closes, an alert that
is still firing is announced at once (the alert processor reconciles "what people were told"
with "what is true", see watchtower/alerting/processor.py).

Two shapes, both in the fleet file's `[[maintenance]]`:
- one-off: `start` and `end` (ISO 8601; a time without offset is read in `timezone`);
- recurring: `cron` (five fields, read in `timezone`, so "0 3 * * SUN" stays 03:00 local across
  daylight-saving changes) and `duration` in minutes.
A window applies to a (check, target) pair when every selector it sets matches: target name
globs, any of the tags, check id or family globs. An empty selector matches everything.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from watchtower.config.operations import MaintenanceWindow, localize


def is_open(window: MaintenanceWindow, now: dt.datetime) -> bool:
    """Whether the window covers the instant `now` (an aware datetime)."""
    if window.start is not None and window.end is not None:
        return (localize(window.start, window.timezone) <= now
                < localize(window.end, window.timezone))
    if window.cron is None or window.duration is None:
        return False
    from apscheduler.triggers.cron import CronTrigger

    zone = ZoneInfo(window.timezone)
    trigger = CronTrigger.from_crontab(window.cron, timezone=zone)
    length = dt.timedelta(minutes=window.duration)
    # The first start strictly after (now - length): if it is not later than now, we are
    # inside (the end is exclusive, as for one-off windows).
    earliest = (now - length + dt.timedelta(microseconds=1)).astimezone(zone)
    start = trigger.get_next_fire_time(None, earliest)
    return start is not None and start <= now


def _matches_any(value: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, g) for g in globs)


def applies(window: MaintenanceWindow, check_id: str, family: str, target: str,
            tags: Sequence[str]) -> bool:
    """Whether the window's selectors cover this (check, target) pair."""
    if window.targets and not _matches_any(target, window.targets):
        return False
    if window.tags and not set(window.tags) & set(tags):
        return False
    return not window.checks or (_matches_any(check_id, window.checks)
                                 or family in window.checks)


def silencing(windows: Sequence[MaintenanceWindow], check_id: str, family: str, target: str,
              tags: Sequence[str], now: dt.datetime) -> str | None:
    """The name of an open window covering the pair, or None when notifications may go out."""
    for window in windows:
        if applies(window, check_id, family, target, tags) and is_open(window, now):
            return window.name
    return None
