"""Gathering a report from the store: latest verdicts, uptime, changes, advisories, remediations.

Reads only; never probes. Scope comes from the fleet file as it is now: a customer's report
holds the targets tagged `customer:<name>` (zones, mail domains, services, their endpoints,
hosts), so moving a domain to another customer moves it in the next report, and history of a
target that left the fleet is not shown to anybody.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable

from watchtower.compliance import explanations
from watchtower.compliance.score import Tally, placement
from watchtower.config import Fleet
from watchtower.model import Status, Target
from watchtower.probe import registry
from watchtower.probe.api import Check
from watchtower.report.hints import hint_for
from watchtower.report.model import (
    Advisory,
    Change,
    Changes,
    CheckLine,
    Period,
    RemediationLine,
    Report,
    Section,
    Uptime,
)
from watchtower.store import ResultRow, Store, aware


def customer_targets(fleet: Fleet, customer: str | None) -> list[Target]:
    """Every target of the customer (all targets when `customer` is None)."""
    targets = fleet.targets()
    if customer is None:
        return targets
    tag = f"customer:{customer}"
    return [t for t in targets if tag in t.tags]


def build_report(store: Store, fleet: Fleet, customer: str | None, period: Period, *,
                 name: str = "adhoc", now: dt.datetime | None = None,
                 checks: dict[str, Check] | None = None) -> Report:
    """Build the report of `customer` (None: the whole fleet) over `period` from the store."""
    checks = registry.checks() if checks is None else checks
    fixes = registry.fixes(fleet)
    targets = customer_targets(fleet, customer)
    where = placement(targets)
    sections: dict[str, Section] = {}
    section_for: dict[str, str] = {}
    for t in targets:
        sname, skind = where.of(t.name, str(t.kind))
        sections.setdefault(sname, Section(sname, skind, []))
        if (t.name, str(t.kind)) not in sections[sname].targets:
            sections[sname].targets.append((t.name, str(t.kind)))
        section_for[t.name] = sname
    rows = _rows_in_period(store, set(section_for), period)
    latest = _latest_per_pair(rows, period)
    for row in latest.values():
        check = checks.get(row.check_id)
        meta = check.meta if check is not None else None
        line = CheckLine(
            check=row.check_id, title=meta.title if meta else row.check_id, family=row.family,
            target=row.target, target_kind=row.target_kind, status=Status(row.status),
            summary=row.summary, observed_since=aware(row.first_at),
            last_seen=aware(row.last_at), standards=meta.standards if meta else (),
            hint=hint_for(row.check_id, meta.hint if meta else ""),
            remediations=fixes.get(row.check_id, ()),
            evidence=store.evidence(row.evidence_id) if row.evidence_id else {},
            cause=f"{row.cause} on {row.cause_target}" if row.cause else None,
        )
        sections[section_for[row.target]].lines.append(line)
    _explain(store, sections.values(), now or dt.datetime.now(dt.UTC))
    for s in sections.values():
        s.lines.sort(key=lambda x: (x.group, x.check, x.target))
    ordered = sorted(sections.values(), key=lambda s: (s.kind != "domain", s.name))
    lines = [x for s in ordered for x in s.lines]
    report = Report(
        name=name, customer=customer, period=period,
        generated_at=now or dt.datetime.now(dt.UTC), sections=ordered,
        uptime=_uptime(rows, period, section_for, {t.name: str(t.kind) for t in targets}),
        changes=_changes(store, rows, lines, name, customer, period),
        advisories=_advisories(lines),
        remediations=_remediations(store, targets, period),
    )
    return report


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


def _rows_in_period(store: Store, targets: set[str], period: Period) -> list[ResultRow]:
    """Streaks of these targets that overlap the period, oldest first; days older than the raw
    retention come from the day rollups (`Store.spans`), so uptime stays exact per day."""
    if not targets:
        return []
    return store.spans(targets, since=period.start, until=period.end)


def _latest_per_pair(rows: list[ResultRow], period: Period) -> dict[tuple[str, str], ResultRow]:
    out: dict[tuple[str, str], ResultRow] = {}
    for row in rows:  # ordered by first_at: the last one seen is the latest
        out[(row.check_id, row.target)] = row
    return out


def probes_within(row: ResultRow, period: Period) -> int:
    """How many of a streak's probes fall inside the period.

    Exact when the streak lies wholly inside (its `count`). A streak crossing a boundary is
    counted as if its probes were evenly spaced between its exact first and last times (they
    were taken on the schedule's interval), so it is off by at most one probe per boundary.
    """
    first, last = aware(row.first_at), aware(row.last_at)
    if first >= period.start and last < period.end:
        return row.count
    if row.count <= 1 or last <= first:
        return row.count if period.start <= first < period.end else 0
    step = (last - first).total_seconds() / (row.count - 1)
    i_lo = max(0, math.ceil((period.start - first).total_seconds() / step))
    i_hi = min(row.count - 1, math.ceil((period.end - first).total_seconds() / step) - 1)
    return max(0, i_hi - i_lo + 1)


def _uptime(rows: list[ResultRow], period: Period, section_for: dict[str, str],
            kinds: dict[str, str]) -> list[Uptime]:
    per: dict[str, Tally] = {}
    for row in rows:
        n = probes_within(row, period)
        per.setdefault(row.target, Tally()).add(row.status, n)
    out = [Uptime(t, kinds.get(t, ""), section_for.get(t, t), c) for t, c in per.items()]
    return sorted(out, key=lambda u: (u.section, u.target))


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
