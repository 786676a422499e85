"""The report's figures over time: the period, what its data covers, availability per signal
and the one row per host that carries both.

Apart from the report's structure (`model.py`) because these are the figures that must not
flatter: an availability is stated only over enough data (`Coverage.enough`), and it is kept
apart from the compliance pass rate of the same host.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from watchtower.compliance.score import Tally, counted, kinds_text


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open reporting window [start, end) in UTC."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def last_days(cls, days: int, end: dt.datetime) -> Period:
        return cls(end - dt.timedelta(days=days), end)

    @property
    def days(self) -> float:
        return round((self.end - self.start).total_seconds() / 86400, 2)

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "days": self.days}


def fmt_percent(value: float | None) -> str:
    """A rate with two decimals (`99.86%`; `100%` only when it is exactly that)."""
    if value is None:
        return "n/a"
    return f"{value:.2f}%" if value < 100 else "100%"


def span_text(span: dt.timedelta) -> str:
    """A duration as a person says it: `5 minutes`, `3.5 hours`, `12.3 days`."""
    seconds = span.total_seconds()
    if seconds < 5400:
        minutes = round(seconds / 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


@dataclass(slots=True)
class Coverage:
    """What the figures over time stand on: the first and last probe counted in the period,
    and whether that span is long enough (`[reporting] min_span_hours`) to state an
    availability at all."""

    period: Period
    first_probe: dt.datetime | None
    last_probe: dt.datetime | None
    min_span: dt.timedelta
    probes: int = 0
    #: probes of ad-hoc runs in the period that the figures leave out (0 when included)
    adhoc_left_out: int = 0
    include_adhoc: bool = False

    @property
    def span(self) -> dt.timedelta:
        if self.first_probe is None or self.last_probe is None:
            return dt.timedelta(0)
        return self.last_probe - self.first_probe

    def enough(self, span: dt.timedelta | None = None) -> bool:
        return (self.span if span is None else span) >= self.min_span and self.probes > 0

    def period_text(self) -> str:
        days = self.period.days
        if days >= 1:
            return f"{days:g}-day period"
        amount, unit = span_text(self.period.end - self.period.start).split(" ")
        return f"{amount}-{unit.removesuffix('s')} period"

    def text(self) -> str:
        """`data from ... to ... (12.3 days of a 30-day period)` or `not enough data: ...`."""
        if self.probes == 0:
            which = "probe" if self.include_adhoc else "scheduled probe"
            return f"not enough data: no {which} in the {self.period_text()}"
        if not self.enough():
            return f"not enough data: {span_text(self.span)} of a {self.period_text()}"
        assert self.first_probe is not None and self.last_probe is not None
        return (f"data from {self.first_probe:%Y-%m-%d %H:%M} to {self.last_probe:%Y-%m-%d %H:%M}"
                f" UTC ({span_text(self.span)} of a {self.period_text()})")

    def line(self) -> str:
        """The line every rendering shows under the period: what was counted and how much."""
        if self.include_adhoc:
            return f"Probes, ad-hoc runs included: {self.text()}"
        left_out = (f"; {counted(self.adhoc_left_out, 'probe')} of ad-hoc runs left out"
                    if self.adhoc_left_out else "")
        return f"Scheduled probes: {self.text()}{left_out}"

    def to_json(self) -> dict[str, Any]:
        return {"first_probe": self.first_probe.isoformat() if self.first_probe else None,
                "last_probe": self.last_probe.isoformat() if self.last_probe else None,
                "span_seconds": self.span.total_seconds(),
                "min_span_seconds": self.min_span.total_seconds(),
                "enough": self.enough(), "probes": self.probes,
                "adhoc_included": self.include_adhoc, "adhoc_left_out": self.adhoc_left_out,
                "text": self.text()}


@dataclass(slots=True)
class Answers:
    """One availability signal on one target over the period: probes answered, unanswered,
    not judged (watchtower/probe/availability.py), and the span they cover."""

    check: str
    label: str
    target: str
    #: every probe of the signal's check in the period; those neither answered nor not are
    #: not judged (the probe broke, or it predates availability)
    probes: int = 0
    answered: int = 0
    unanswered: int = 0
    first_probe: dt.datetime | None = None
    last_probe: dt.datetime | None = None

    @property
    def asked(self) -> int:
        return self.answered + self.unanswered

    @property
    def not_judged(self) -> int:
        return max(0, self.probes - self.asked)

    def count(self, answered: bool, n: int, first: dt.datetime, last: dt.datetime) -> None:
        """Add `n` probes between `first` and `last` that saw the service answer, or not."""
        if answered:
            self.answered += n
        else:
            self.unanswered += n
        self.first_probe = first if self.first_probe is None else min(self.first_probe, first)
        self.last_probe = last if self.last_probe is None else max(self.last_probe, last)

    @property
    def span(self) -> dt.timedelta:
        if self.first_probe is None or self.last_probe is None:
            return dt.timedelta(0)
        return self.last_probe - self.first_probe

    def percent(self, coverage: Coverage) -> float | None:
        """answered / asked, three decimals; None without enough data (`Coverage.enough`)."""
        if not self.asked or not coverage.enough(self.span):
            return None
        return round(100 * self.answered / self.asked, 3)

    def text(self, coverage: Coverage) -> str:
        """`HTTPS 99.86%`, `DNS: not enough data`, `SMTP: not judged (3 probes)`."""
        value = self.percent(coverage)
        if value is not None:
            return f"{self.label} {fmt_percent(value)}"
        if self.asked:
            return f"{self.label}: not enough data"
        return f"{self.label}: not judged ({self.not_judged} probes)"

    def to_json(self, coverage: Coverage) -> dict[str, Any]:
        return {"check": self.check, "label": self.label, "target": self.target,
                "probes": self.probes, "answered": self.answered,
                "unanswered": self.unanswered, "not_judged": self.not_judged,
                "first_probe": self.first_probe.isoformat() if self.first_probe else None,
                "last_probe": self.last_probe.isoformat() if self.last_probe else None,
                "enough_data": coverage.enough(self.span),
                "availability_percent": self.percent(coverage)}


@dataclass(slots=True)
class NameRow:
    """One host as the reader knows it, with every target reached at it (a zone, the mail
    domain of that name, its endpoint): its families, availability per signal, and its
    compliance over the period (every probe, scored like the score)."""

    name: str
    section: str
    targets: list[tuple[str, str]] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    probes: Tally = field(default_factory=Tally)
    signals: list[Answers] = field(default_factory=list)

    @property
    def compliance_percent(self) -> float | None:
        value = self.probes.percent
        return None if value is None else round(value, 3)

    def availability(self, coverage: Coverage) -> float | None:
        """The lowest availability of its signals (None when none has enough data)."""
        known = [p for p in (a.percent(coverage) for a in self.signals) if p is not None]
        return min(known, default=None)

    def availability_text(self, coverage: Coverage) -> str:
        if not self.signals:
            return "no availability check"
        return " \u00b7 ".join(a.text(coverage) for a in self.signals)

    @property
    def kinds_text(self) -> str:
        """What the host is seen as: `zone, mail domain, endpoint`."""
        return kinds_text(k for _, k in self.targets)

    def compliance_text(self) -> str:
        value = self.compliance_percent
        return self.probes.text() if value is None else fmt_percent(value)

    def to_json(self, coverage: Coverage) -> dict[str, Any]:
        return {"name": self.name, "section": self.section,
                "targets": [{"name": n, "kind": k} for n, k in self.targets],
                "families": self.families, "probes": self.probes.to_json(),
                "probe_count": self.probes.total,
                "compliance_percent": self.compliance_percent,
                "availability_percent": self.availability(coverage),
                "signals": [a.to_json(coverage) for a in self.signals]}
