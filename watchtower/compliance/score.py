"""Compliance scores per domain and family, in the spirit of internet.nl's percentages.

The rule, and why:
- A check result scores `ok` 100 %, `warn` 50 % (recommended, not required), `fail` 0 %.
- `error` is left out: the probe could not run, which says nothing about compliance (the
  catalog's rule). A family whose checks all errored has no score (None), not 0 %.
- A domain collects every target named under it (its zone, mail domain, services, endpoints),
  found with the Public Suffix List, so `social.alpha.test:8443` counts for `alpha.test`.
- Score = mean of the per-result scores, rounded to a whole percent; the overall score is the
  mean over all of the domain's results (so a family with more checks weighs more, as in
  internet.nl where each test is one point).

The trend replays the history streaks: the status of each (check, target) at the end of each day
is the streak that had started by then.

Pure functions over rows the store hands them (`Store.statuses`, `Store.read_history`): scoring
never reads the database itself.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from publicsuffixlist import PublicSuffixList

from watchtower.store import History, aware

WEIGHT = {"ok": 1.0, "warn": 0.5, "fail": 0.0}
TARGET_KINDS_WITHOUT_DOMAIN = ("host",)  # host names are not DNS domains of a customer


@functools.cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


@functools.cache
def domain_of(target: str) -> str:
    """The registrable domain of a target name (port and trailing dot dropped)."""
    name = target.rsplit(":", 1)[0] if target.count(":") == 1 else target
    name = name.strip(".").lower()
    if "." not in name:
        return name
    return _psl().privatesuffix(name) or name


def score(statuses: Iterable[str]) -> float | None:
    """Percentage 0-100 over the scorable statuses, or None when none is scorable."""
    values = [WEIGHT[s] for s in statuses if s in WEIGHT]
    if not values:
        return None
    return 100.0 * sum(values) / len(values)


@dataclass(slots=True)
class DomainScore:
    domain: str
    overall: float | None
    by_family: dict[str, float | None]
    results: int


def domain_scores(pairs: Iterable[tuple[str, str, str, str]]) -> list[DomainScore]:
    """From (target, kind, family, status) to one score row per domain, lowest score first."""
    by_domain: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for target, kind, family, status in pairs:
        if kind in TARGET_KINDS_WITHOUT_DOMAIN:
            continue
        by_domain[domain_of(target)][family].append(status)
    out = []
    for domain, fams in by_domain.items():
        every = [s for v in fams.values() for s in v]
        out.append(DomainScore(domain, score(every), {f: score(v) for f, v in fams.items()},
                               len(every)))
    out.sort(key=lambda d: (d.overall if d.overall is not None else 101.0, d.domain))
    return out


def score_table(scores: list[DomainScore]) -> tuple[list[str], list[dict[str, Any]]]:
    """Families shown (sorted) and one row per domain with rounded percentages."""
    families = sorted({f for d in scores for f in d.by_family})
    rows = []
    for d in scores:
        row: dict[str, Any] = {"domain": d.domain,
                               "score": None if d.overall is None else round(d.overall)}
        for f in families:
            value = d.by_family.get(f)
            row[f] = None if value is None else round(value)
        row["results"] = d.results
        rows.append(row)
    return families, rows


def domain_trend(history: History, domain: str, start: dt.datetime, end: dt.datetime
                 ) -> list[dict[str, Any]]:
    """Daily score per family (and `overall`) of one domain from `start` to `end`, from its
    history since `start` (`Store.read_history(containing=domain, since=start)`)."""
    streaks: dict[tuple[str, str], list[tuple[dt.datetime, str, str]]] = defaultdict(list)
    # Days older than the raw retention come first (they precede every raw streak of their
    # pair): the status each day ended with, from the day's first probe on (a daily trend
    # point inside a rolled-up day reads that day's final status).
    for day in history.days:
        if day.target_kind not in TARGET_KINDS_WITHOUT_DOMAIN and domain_of(day.target) == domain:
            streaks[(day.check_id, day.target)].append(
                (aware(day.first_at), day.family, day.last_status))
    for row in history.streaks:
        if row.target_kind not in TARGET_KINDS_WITHOUT_DOMAIN and domain_of(row.target) == domain:
            streaks[(row.check_id, row.target)].append(
                (aware(row.first_at), row.family, row.status))
    return replay(streaks, start, end)


def replay(streaks: dict[tuple[str, str], list[tuple[dt.datetime, str, str]]],
           start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Scores once a day from `start`, and at `end` (pure; feeds the trend chart)."""
    times = []
    t = start
    while t < end:
        times.append(t)
        t += dt.timedelta(days=1)
    times.append(end)
    points = []
    for at in times:
        by_family: dict[str, list[str]] = defaultdict(list)
        for spans in streaks.values():
            current = None
            for first, family, status in spans:  # sorted by first_at
                if first > at:
                    break
                current = (family, status)
            if current is not None:
                by_family[current[0]].append(current[1])
        overall = score([s for v in by_family.values() for s in v])
        if overall is None:
            continue
        points.append({"at": at, "family": "overall", "score": overall})
        for fam, statuses in sorted(by_family.items()):
            value = score(statuses)
            if value is not None:
                points.append({"at": at, "family": fam, "score": value})
    return points
