"""A report's figures over time: what the data covers, and per host its availability and its
compliance over the period. Read from the stored history (`Store.read_history`); never probes.

Two figures, each named for what it is:
- *availability* counts the probes of the availability signals
  (watchtower/probe/availability.py): answered / asked, per signal. A missing HSTS header
  is not downtime.
- *compliance over the period* scores every probe of every check the way the score scores
  the latest verdicts (ok 1, warn 0.5, fail 0; errors left out).

Neither is stated over less data than `[reporting] min_span_hours`: the report then says how
little it had ("not enough data: 5 minutes of a 30-day period"). Probes of ad-hoc runs
(`watchtower check`, remediation verifications) are not samples of the period and are left out
unless asked (`include_adhoc`); how many were left out is said.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from watchtower.compliance.score import Placement, family_group, group_rank
from watchtower.config import ReportingSettings
from watchtower.model import Target
from watchtower.probe.availability import ORDER, SIGNALS
from watchtower.report.over_time import Answers, Coverage, NameRow, Period
from watchtower.store import History, ResultRow, aware


@dataclass(frozen=True, slots=True)
class Within:
    """The probes of one streak that fall inside a period: how many, the first and the last."""

    count: int
    first: dt.datetime | None = None
    last: dt.datetime | None = None


def within(row: ResultRow, period: Period) -> Within:
    """The probes of a streak inside the period.

    Exact when the streak lies wholly inside (its `count`, first and last). A streak crossing a
    boundary is counted as if its probes were evenly spaced between its exact first and last
    times (they were taken on the schedule's interval), so it is off by at most one probe per
    boundary.
    """
    first, last = aware(row.first_at), aware(row.last_at)
    if first >= period.start and last < period.end:
        return Within(row.count, first, last)
    if row.count <= 1 or last <= first:
        inside = period.start <= first < period.end
        return Within(row.count, first, last) if inside else Within(0)
    step = (last - first).total_seconds() / (row.count - 1)
    i_lo = max(0, math.ceil((period.start - first).total_seconds() / step))
    i_hi = min(row.count - 1, math.ceil((period.end - first).total_seconds() / step) - 1)
    if i_hi < i_lo:
        return Within(0)
    return Within(i_hi - i_lo + 1, first + dt.timedelta(seconds=i_lo * step),
                  first + dt.timedelta(seconds=i_hi * step))


def probes_within(row: ResultRow, period: Period) -> int:
    """How many of a streak's probes fall inside the period (`within`)."""
    return within(row, period).count


def without_adhoc(history: History, include_adhoc: bool) -> tuple[History, list[ResultRow]]:
    """The history the figures count, and the ad-hoc streaks left out of it (none when they
    are included). Rolled-up days hold scheduled probes only."""
    if include_adhoc:
        return history, []
    left_out = [r for r in history.streaks if r.adhoc]
    kept = History(streaks=[r for r in history.streaks if not r.adhoc], days=history.days)
    return kept, left_out


def coverage(spans: Iterable[ResultRow], period: Period, settings: ReportingSettings,
             left_out: Iterable[ResultRow], include_adhoc: bool) -> Coverage:
    """First and last probe counted in the period, and how many probes."""
    out = Coverage(period, None, None, dt.timedelta(hours=settings.min_span_hours),
                   include_adhoc=include_adhoc)
    for row in spans:
        got = within(row, period)
        if not got.count or got.first is None or got.last is None:
            continue
        out.probes += got.count
        out.first_probe = got.first if out.first_probe is None else min(out.first_probe,
                                                                        got.first)
        out.last_probe = got.last if out.last_probe is None else max(out.last_probe, got.last)
    out.adhoc_left_out = sum(probes_within(r, period) for r in left_out)
    return out


def name_rows(targets: Iterable[Target], where: Placement, history: History, period: Period,
              planned: Iterable[tuple[str, str, str]]) -> list[NameRow]:
    """One row per host the targets are reached at, in the order of the sections: its
    targets, the families checked on them, every probe's verdict counted, and its signals."""
    rows = _Rows(period)
    for t in targets:
        rows.add_target(t.name, str(t.kind), where)
    for target, kind, family in planned:
        rows.add_family(target, kind, family)
    for span in history.spans():
        rows.add_probes(span)
    for span in history.answer_spans():
        rows.add_answers(span)
    return rows.done()


@dataclass(slots=True)
class _Rows:
    """The rows of `name_rows` while they are counted."""

    period: Period
    by_name: dict[str, NameRow] = field(default_factory=dict)
    of_target: dict[tuple[str, str], NameRow] = field(default_factory=dict)
    families: dict[str, set[str]] = field(default_factory=dict)
    signals: dict[tuple[str, str], Answers] = field(default_factory=dict)
    #: rows as the report's sections are ordered: domains first, then hosts and jobs
    order: dict[str, tuple[bool, str, str]] = field(default_factory=dict)

    def add_target(self, target: str, kind: str, where: Placement) -> None:
        name = where.host(target, kind)
        section, section_kind = where.of(target, kind)
        row = self.by_name.setdefault(name, NameRow(name, section))
        self.order.setdefault(name, (section_kind != "domain", section, name))
        if (target, kind) not in row.targets:
            row.targets.append((target, kind))
        self.of_target[(target, kind)] = row
        self.families.setdefault(name, set())

    def add_family(self, target: str, kind: str, family: str) -> None:
        row = self.of_target.get((target, kind))
        if row is not None:
            self.families[row.name].add(family_group(family))

    def add_probes(self, span: ResultRow) -> None:
        row = self.of_target.get((span.target, span.target_kind))
        n = probes_within(span, self.period)
        if row is None or not n:
            return
        row.probes.add(span.status, n)
        self.add_family(span.target, span.target_kind, span.family)
        if span.check_id in SIGNALS:
            self._signal(row, span).probes += n

    def add_answers(self, span: ResultRow) -> None:
        row = self.of_target.get((span.target, span.target_kind))
        got = within(span, self.period)
        if (row is None or span.check_id not in SIGNALS or not got.count or got.first is None
                or got.last is None):
            return
        self._signal(row, span).count(bool(span.answered), got.count, got.first, got.last)

    def _signal(self, row: NameRow, span: ResultRow) -> Answers:
        """The figures of a span's signal on its target, created in its row on first sight."""
        key = (span.check_id, span.target)
        answers = self.signals.get(key)
        if answers is None:
            label = SIGNALS[span.check_id].label
            answers = self.signals[key] = Answers(span.check_id, label, span.target)
            row.signals.append(answers)
        return answers

    def done(self) -> list[NameRow]:
        for row in self.by_name.values():
            row.families = sorted(self.families[row.name], key=group_rank)
            row.signals.sort(key=lambda a: (ORDER[a.check], a.target))
        return sorted(self.by_name.values(), key=lambda r: self.order[r.name])
