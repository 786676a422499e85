"""The report as data: what a customer reads and an auditor checks, before any rendering.

Every renderer (HTML, text, PDF) and the JSON evidence attachment read this one structure, so
the four never disagree. `to_json` is the stable, documented schema (docs/report-schema.md);
bump `SCHEMA_VERSION` on any change that is not a pure addition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from watchtower import __version__
from watchtower.compliance import states
from watchtower.compliance.explanations import Explanation
from watchtower.compliance.score import (
    SECTION_KINDS,
    SectionScore,
    Tally,
    counted,
    family_group,
    kinds_text,
    lowest,
    scope_text,
    tally,
)
from watchtower.model import Status

#: 2: results[].remediation (one id or null) became remediations (ids).
#: 3: `uptime` (a pass rate named uptime) became `rows` (one per host: availability from its
#:    signals apart from its compliance over the period) and `coverage`; families have a state.
SCHEMA_VERSION = 3

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


def groups_of(lines: list[CheckLine], expected: Iterable[str] = ()) -> dict[str, Tally]:
    """The lines' verdicts counted per family group, in the groups' order; an `expected`
    family without a line is an empty group (`not run`)."""
    section = SectionScore("", "domain")
    for line in lines:
        section.add(line.family, line.scored_status)
    for family in expected:
        section.expect(family)
    return section.ordered_groups()


def families_json(groups: dict[str, Tally]) -> list[dict[str, Any]]:
    return [{"family": g, "score": c.score, "state": c.state, "text": c.text(), **c.to_json()}
            for g, c in groups.items()]


@dataclass(slots=True)
class CheckLine:
    """The latest verdict of one check on one target within the period, with its evidence."""

    check: str
    title: str
    family: str
    target: str
    target_kind: str
    status: Status
    summary: str
    observed_since: dt.datetime
    last_seen: dt.datetime
    standards: tuple[str, ...]
    hint: str
    remediations: tuple[str, ...]
    evidence: dict[str, Any] = field(default_factory=dict)
    #: A valid comply-or-explain record covering this failure or warning (not scored).
    explanation: Explanation | None = None

    @property
    def scored_status(self) -> str:
        """What the score counts: the status, or `explained` while an explanation covers it."""
        return "explained" if self.explanation is not None else str(self.status)

    @property
    def group(self) -> str:
        return family_group(self.family)

    @property
    def key(self) -> tuple[str, str]:
        return (self.check, self.target)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check, "title": self.title, "family": self.family,
            "family_group": self.group, "target": self.target, "target_kind": self.target_kind,
            "status": str(self.status), "summary": self.summary,
            "observed_since": self.observed_since.isoformat(),
            "last_seen": self.last_seen.isoformat(), "standards": list(self.standards),
            "hint": self.hint, "remediations": list(self.remediations),
            "evidence": self.evidence,
            "explanation": self.explanation.to_json() if self.explanation else None,
        }


@dataclass(slots=True)
class Section:
    """One domain (its zone, mail domain, services and endpoints) or one host."""

    name: str
    kind: str  # domain | host
    targets: list[tuple[str, str]]  # (name, kind)
    lines: list[CheckLine] = field(default_factory=list)
    #: criterion -> the explanation valid on the report's day, for this domain.
    explanations: dict[str, Explanation] = field(default_factory=dict)
    #: families of the checks planned on the section's targets (`not run` without a line)
    expected: set[str] = field(default_factory=set)

    @property
    def counts(self) -> Tally:
        return tally(x.scored_status for x in self.lines)

    @property
    def groups(self) -> dict[str, Tally]:
        return groups_of(self.lines, self.expected)

    @property
    def frameworks(self) -> dict[str, list[states.TestState]]:
        """internet.nl web and mail: every test in its state for this domain."""
        if self.kind != "domain":
            return {}
        return states.framework_states(self.lines, self.explanations)

    @property
    def standards(self) -> list[states.StandardState]:
        """"pas toe of leg uit": each standard's state for this domain."""
        return states.standard_states(self.frameworks)

    @property
    def problems(self) -> list[CheckLine]:
        """Failures first, then errors and warnings: what the reader must act on."""
        bad = [x for x in self.lines if x.status is not Status.OK]
        return sorted(bad, key=lambda x: (-x.status.rank, x.group, x.check, x.target))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "score": self.counts.score,
            "counts": self.counts.to_json(),
            "families": families_json(self.groups),
            "targets": [{"name": n, "kind": k} for n, k in self.targets],
            "results": [x.to_json() for x in self.lines],
            "frameworks": (states.to_json(self.lines, self.explanations)
                           if self.kind == "domain" else {}),
        }


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


@dataclass(slots=True)
class Change:
    check: str
    target: str
    old: str | None
    new: str
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "target": self.target, "old": self.old, "new": self.new,
                "summary": self.summary}


@dataclass(slots=True)
class Changes:
    baseline: str  # "report" | "history"
    baseline_report_id: int | None
    baseline_at: dt.datetime
    new_failures: list[Change] = field(default_factory=list)
    new_warnings: list[Change] = field(default_factory=list)
    fixed: list[Change] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"baseline": {"kind": self.baseline, "report_id": self.baseline_report_id,
                             "at": self.baseline_at.isoformat()},
                "new_failures": [c.to_json() for c in self.new_failures],
                "new_warnings": [c.to_json() for c in self.new_warnings],
                "fixed": [c.to_json() for c in self.fixed]}


@dataclass(slots=True)
class Advisory:
    target: str
    id: str
    package: str
    severity: str
    whitelisted: bool

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "id": self.id, "package": self.package,
                "severity": self.severity, "whitelisted": self.whitelisted}


@dataclass(slots=True)
class RemediationLine:
    id: int
    remediation: str
    target: str
    state: str
    outcome: str
    summary: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    approved_by: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "remediation": self.remediation, "target": self.target,
                "state": self.state, "outcome": self.outcome, "summary": self.summary,
                "created_at": self.created_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "approved_by": self.approved_by}


@dataclass(slots=True)
class Report:
    """A whole compliance report; build it with `build_report`, render it with `render_*`."""

    name: str
    customer: str | None
    period: Period
    generated_at: dt.datetime
    sections: list[Section]
    rows: list[NameRow]
    coverage: Coverage
    changes: Changes
    advisories: list[Advisory]
    remediations: list[RemediationLine]

    @property
    def lines(self) -> list[CheckLine]:
        return [x for s in self.sections for x in s.lines]

    @property
    def counts(self) -> Tally:
        return tally(x.scored_status for x in self.lines)

    @property
    def score(self) -> int | None:
        return self.counts.score

    @property
    def groups(self) -> dict[str, Tally]:
        return groups_of(self.lines, {f for s in self.sections for f in s.expected})

    @property
    def lowest(self) -> Section | None:
        """The section with the lowest score: the headline's colour follows it."""
        return lowest(self.sections, lambda s: s.counts)

    @property
    def targets(self) -> list[tuple[str, str]]:
        return [t for s in self.sections for t in s.targets]

    @property
    def scope_text(self) -> str:
        """The counts, each named for what it counts: `118 check results on 21 targets (12
        names) in 3 domains, 2 hosts and 1 job`."""
        kinds = [(k, sum(1 for s in self.sections if s.kind == k)) for k in SECTION_KINDS]
        parts = [counted(n, k) for k, n in kinds if n] or ["no domain"]
        where = " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)
        return f"{scope_text(len(self.lines), len(self.targets), len(self.rows))} in {where}"

    @property
    def drift(self) -> list[CheckLine]:
        return [x for x in self.lines if x.group == "drift"]

    @property
    def title(self) -> str:
        who = f" for {self.customer}" if self.customer else ""
        return f"Compliance report{who}"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "watchtower.compliance-report",
            "generator": {"name": "watchtower", "version": __version__},
            "name": self.name, "customer": self.customer,
            "generated_at": self.generated_at.isoformat(), "period": self.period.to_json(),
            "score": self.score, "counts": self.counts.to_json(),
            "lowest": ({"section": low.name, "score": low.counts.score}
                       if (low := self.lowest) is not None else None),
            "scope": {"check_results": len(self.lines), "targets": len(self.targets),
                      "rows": len(self.rows), "sections": len(self.sections),
                      "text": self.scope_text},
            "families": families_json(self.groups),
            "coverage": self.coverage.to_json(),
            "sections": [s.to_json() for s in self.sections],
            "rows": [r.to_json(self.coverage) for r in self.rows],
            "changes": self.changes.to_json(),
            "drift": [{"check": x.check, "target": x.target, "status": str(x.status),
                       "summary": x.summary} for x in self.drift],
            "advisories": [a.to_json() for a in self.advisories],
            "remediations": [r.to_json() for r in self.remediations],
        }
