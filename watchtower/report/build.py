"""Gathering a report from the store: latest verdicts, figures over time (report/figures.py),
changes, advisories, remediations.

Reads only; never probes. Scope comes from the fleet file as it is now: a customer's report
holds the targets tagged `customer:<name>` (zones, mail domains, services, their endpoints,
hosts), so moving a domain to another customer moves it in the next report, and history of a
target that left the fleet is not shown to anybody.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from watchtower.compliance import explanations
from watchtower.compliance.score import Placement, placement
from watchtower.config import Fleet
from watchtower.model import Status, Target
from watchtower.probe import registry
from watchtower.probe.api import Check
from watchtower.probe.runner import planned_families
from watchtower.report.figures import coverage, name_rows, without_adhoc
from watchtower.report.hints import hint_for
from watchtower.report.model import (
    Advisory,
    Change,
    Changes,
    CheckLine,
    RemediationLine,
    Report,
    Section,
)
from watchtower.report.over_time import Period
from watchtower.store import History, ResultRow, Store, aware


def customer_targets(fleet: Fleet, customer: str | None) -> list[Target]:
    """Every target of the customer (all targets when `customer` is None)."""
    targets = fleet.targets()
    if customer is None:
        return targets
    tag = f"customer:{customer}"
    return [t for t in targets if tag in t.tags]


def build_report(store: Store, fleet: Fleet, customer: str | None, period: Period, *,
                 name: str = "adhoc", now: dt.datetime | None = None,
                 checks: dict[str, Check] | None = None,
                 include_adhoc: bool = False) -> Report:
    """Build the report of `customer` (None: the whole fleet) over `period` from the store.
    Only scheduled sweeps count unless `include_adhoc` (watchtower/report/figures.py)."""
    checks = registry.checks() if checks is None else checks
    targets = customer_targets(fleet, customer)
    where = placement(targets)
    planned = planned_families(fleet, checks, targets)
    sections, section_for = _sections(targets, where, planned)
    history, left_out = without_adhoc(_history(store, set(section_for), period), include_adhoc)
    rows = history.spans()
    fixes = registry.fixes(fleet)
    for row, since in _latest_per_pair(rows).values():
        sections[section_for[row.target]].lines.append(_line(store, row, since, checks, fixes))
    _explain(store, sections.values(), now or dt.datetime.now(dt.UTC))
    for s in sections.values():
        s.lines.sort(key=lambda x: (x.group, x.check, x.target))
    ordered = sorted(sections.values(), key=lambda s: (s.kind != "domain", s.name))
    lines = [x for s in ordered for x in s.lines]
    return Report(
        name=name, customer=customer, period=period,
        generated_at=now or dt.datetime.now(dt.UTC), sections=ordered,
        rows=name_rows(targets, where, history, period, planned),
        coverage=coverage(rows, period, fleet.reporting, left_out, include_adhoc),
        changes=_changes(store, rows, lines, name, customer, period),
        advisories=_advisories(lines),
        remediations=_remediations(store, targets, period),
    )


def _sections(targets: list[Target], where: Placement, planned: set[tuple[str, str, str]]
              ) -> tuple[dict[str, Section], dict[str, str]]:
    """One section per domain or host, with its targets and the families planned on them;
    and the section of each target name."""
    sections: dict[str, Section] = {}
    section_for: dict[str, str] = {}
    for t in targets:
        sname, skind = where.of(t.name, str(t.kind))
        section = sections.setdefault(sname, Section(sname, skind, []))
        if (t.name, str(t.kind)) not in section.targets:
            section.targets.append((t.name, str(t.kind)))
        section_for[t.name] = sname
    for target, _kind, family in planned:
        sections[section_for[target]].expected.add(family)
    return sections, section_for


def _line(store: Store, row: ResultRow, since: dt.datetime, checks: dict[str, Check],
          fixes: dict[str, tuple[str, ...]]) -> CheckLine:
    check = checks.get(row.check_id)
    meta = check.meta if check is not None else None
    return CheckLine(
        check=row.check_id, title=meta.title if meta else row.check_id, family=row.family,
        target=row.target, target_kind=row.target_kind, status=Status(row.status),
        summary=row.summary, observed_since=since,
        last_seen=aware(row.last_at), standards=meta.standards if meta else (),
        hint=hint_for(row.check_id, meta.hint if meta else ""),
        remediations=fixes.get(row.check_id, ()),
        evidence=store.evidence(row.evidence_id) if row.evidence_id else {},
        cause=f"{row.cause} on {row.cause_target}" if row.cause else None,
    )


def _explain(store: Store, sections: Iterable[Section], now: dt.datetime) -> None:
    """Comply or explain: the explanations valid on the report's day, per domain, and the
    failures and warnings they cover (not scored; shown as explained with the reason)."""
    valid = explanations.active(explanations.in_force(store), now.date())
    for section in sections:
        section.explanations = explanations.for_domain(valid, section.name)
        if not section.explanations:
            continue
        for line in section.lines:
            line.explanation = explanations.check_explanation(
                line.check, str(line.status), line.evidence, section.explanations)


def _history(store: Store, targets: set[str], period: Period) -> History:
    """Streaks of these targets that overlap the period (ad-hoc ones too: the caller decides),
    oldest first; days older than the raw retention come from the day rollups, so the figures
    stay exact per day."""
    if not targets:
        return History()
    return store.read_history(targets, since=period.start, until=period.end)


def _latest_per_pair(rows: list[ResultRow]
                     ) -> dict[tuple[str, str], tuple[ResultRow, dt.datetime]]:
    """The latest streak of each pair, and since when its verdict held: the first probe of
    the unbroken run of streaks with that verdict and evidence (an ad-hoc run left out may
    have split one streak in two)."""
    out: dict[tuple[str, str], tuple[ResultRow, dt.datetime]] = {}
    for row in rows:  # ordered by first_at: the last one seen is the latest
        key = (row.check_id, row.target)
        before = out.get(key)
        since = aware(row.first_at)
        if (before is not None and before[0].status == row.status
                and before[0].summary == row.summary
                and before[0].evidence_id == row.evidence_id):
            since = before[1]
        out[key] = (row, since)
    return out


def _baseline(store: Store, rows: list[ResultRow], name: str, customer: str | None,
              period: Period) -> tuple[str, int | None, dt.datetime, dict[tuple[str, str], str]]:
    """Statuses to compare with: the previous stored report of this name and customer, or else
    what the history says held at the start of the period."""
    prev = store.reports.previous(name, customer, period.end)
    if prev is not None:
        body = json.loads(prev.body_json)
        statuses = {(r["check"], r["target"]): r["status"]
                    for sec in body.get("sections", []) for r in sec.get("results", [])}
        return "report", prev.id, aware(prev.created_at), statuses
    statuses = {}
    for row in rows:
        if aware(row.first_at) < period.start:
            statuses[(row.check_id, row.target)] = row.status
    return "history", None, period.start, statuses


def _changes(store: Store, rows: list[ResultRow], lines: list[CheckLine], name: str,
             customer: str | None, period: Period) -> Changes:
    kind, report_id, at, before = _baseline(store, rows, name, customer, period)
    changes = Changes(kind, report_id, at)
    for line in lines:
        old = before.get(line.key)
        new = str(line.status)
        change = Change(line.check, line.target, old, new, line.summary)
        if line.status is Status.FAIL and old != "fail":
            changes.new_failures.append(change)
        elif line.status is Status.WARN and old in (None, "ok"):
            changes.new_warnings.append(change)
        elif line.status is Status.OK and old in ("fail", "warn", "error"):
            changes.fixed.append(change)
    return changes


def _advisories(lines: list[CheckLine]) -> list[Advisory]:
    out = []
    for line in lines:
        if line.check != "drift.advisories":
            continue
        for m in line.evidence.get("matches", []) or []:
            if isinstance(m, dict):
                out.append(Advisory(line.target, str(m.get("id", "")), str(m.get("package", "")),
                                    str(m.get("severity", "")), bool(m.get("whitelist"))))
    return out


def _remediations(store: Store, targets: list[Target], period: Period) -> list[RemediationLine]:
    names = {t.name for t in targets}
    rows = [r for r in store.remediation.active_in(period.start, period.end)
            if r.target in names or r.host in names]
    return [RemediationLine(r.id or 0, r.remediation, r.target, r.state, r.outcome, r.summary,
                            aware(r.created_at), aware(r.finished_at) if r.finished_at else None,
                            r.approved_by) for r in rows]
