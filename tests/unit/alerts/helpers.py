"""Building blocks for the alert tests: a fresh store, a fleet from TOML text, results."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

from watchtower.config import Fleet, parse_fleet
from watchtower.model import Result, Status, Target, TargetKind
from watchtower.store import Store

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
#: A maintenance window over the bravo targets, open for the first hour after T0.
BRAVO_WINDOW = """
[[maintenance]]
name = "bravo upgrade"
targets = ["bravo.*"]
start = "2026-03-01T12:00:00+00:00"
end = "2026-03-01T13:00:00+00:00"
"""


def fleet(text: str = "") -> Fleet:
    return parse_fleet(tomllib.loads(text), "test.toml")


def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'wt.db'}")


def result(status: Status | str, at: dt.datetime, *, check: str = "dns.ns.count",
           family: str = "dns", target: str = "bravo.test", summary: str | None = None,
           evidence: dict[str, Any] | None = None, tags: tuple[str, ...] = ()) -> Result:
    st = Status(status)
    return Result(check=check, family=family, target=Target(TargetKind.ZONE, target, None, tags),
                  status=st, summary=summary or f"{check} is {st}", evidence=evidence or {},
                  duration_ms=12.0, at=at)


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)
