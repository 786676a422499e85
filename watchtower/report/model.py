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
    lowest,
    scope_text,
    tally,
)
from watchtower.model import Status
from watchtower.report.over_time import Coverage, NameRow, Period

#: 2: results[].remediation (one id or null) became remediations (ids).
#: 3: `uptime` (a pass rate named uptime) became `rows` (one per host: availability from its
#:    signals apart from its compliance over the period) and `coverage`; families have a state.
SCHEMA_VERSION = 3

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
    #: "check on target" of the failed prerequisite that left this line unjudged (an error).
    cause: str | None = None

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

    @property
    def name(self) -> str:
        """"check on target": how a cause names its root."""
        return f"{self.check} on {self.target}"

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
            "cause": self.cause,
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
        """Failures first, then errors and warnings: what the reader must act on. Grouped by
        incident: a line its root cause left unjudged is listed under that root (`affected`)
        when the root is in this section, not again on its own."""
        here = {x.name for x in self.lines}
        bad = [x for x in self.lines if x.status is not Status.OK and x.cause not in here]
        return sorted(bad, key=lambda x: (-x.status.rank, x.group, x.check, x.target))

    def affected(self, root: CheckLine) -> list[CheckLine]:
        """The lines of this section that `root`'s failure left unjudged."""
        return sorted((x for x in self.lines if x.cause == root.name),
                      key=lambda x: (x.check, x.target))

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
