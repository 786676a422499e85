"""A graded criterion: what every compliance check keeps per criterion, and how criteria
become findings, combine over several servers and show as internet.nl shows them.

`tls_criteria` (NCSC-NL TLS) and `http_headers` (internet.nl's header rules) build these;
checks judge from them and store `to_json` in their evidence; the report reads that back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from watchtower.compliance import ncsc_tls as ncsc
from watchtower.compliance.frameworks import BY_ID, LEVEL_STATUS, InStatus, internetnl_ids
from watchtower.compliance.ncsc_tls import Level
from watchtower.model import Findings


@dataclass(slots=True)
class Criterion:
    """One graded criterion: guideline level (None where the guideline grades nothing),
    internet.nl status before capping, a sentence for people, and what it was graded on."""

    key: str
    level: Level | None
    status: InStatus
    detail: str
    section: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self, check_id: str) -> dict[str, Any]:
        ids = internetnl_ids(check_id, self.key)
        return {
            "criterion": self.key, "level": str(self.level) if self.level else None,
            "status": str(self.status), "detail": self.detail,
            "guideline": f"{ncsc.GUIDELINE} {self.section}".strip() if self.section else None,
            "internetnl": {i: str(self.status.capped(BY_ID[i].worst)) for i in ids},
            "evidence": self.evidence,
        }


def graded(key: str, table: ncsc.Table, value: str, detail: str,
           **evidence: Any) -> Criterion:
    level = table.grade(value)
    return Criterion(key, level, LEVEL_STATUS[level], detail, table.section, dict(evidence))


def worst_graded(key: str, section: str, levels: Mapping[str, Level], noun: str,
                 **evidence: Any) -> Criterion:
    """A criterion over several values (suites, groups, certificates): the worst one counts,
    and the detail names every value below sufficient."""
    level = Level.worst(list(levels.values()))
    weak = [f"{name} ({lv})" for name, lv in levels.items() if not lv.passes]
    detail = (f"{noun}s below sufficient: " + ", ".join(weak[:8])
              + (" ..." if len(weak) > 8 else "")
              if weak else f"every {noun} is good or sufficient ({len(levels)})")
    return Criterion(key, level, LEVEL_STATUS[level], detail, section,
                     {"levels": {k: str(v) for k, v in levels.items()}, **evidence})


def not_tested(key: str, why: str) -> Criterion:
    return Criterion(key, None, InStatus.NOT_TESTED, why)


def combine(per_server: Mapping[str, list[Criterion]]) -> list[Criterion]:
    """Criteria of several servers (every MX) as one: the worst status and level win, the
    detail names each server that is not passed, the evidence keeps every server's."""
    keys: list[str] = []
    for crits in per_server.values():
        keys += [c.key for c in crits if c.key not in keys]
    out = []
    for key in keys:
        found = {name: c for name, crits in per_server.items() for c in crits if c.key == key}
        status = InStatus.worst_of(c.status for c in found.values())
        levels = [c.level for c in found.values() if c.level is not None]
        bad = [f"{name}: {c.detail}" for name, c in found.items() if c.status != InStatus.PASSED]
        detail = "; ".join(bad) if bad else next(iter(found.values())).detail
        section = next((c.section for c in found.values() if c.section), "")
        out.append(Criterion(key, Level.worst(levels) if levels else None, status, detail,
                             section, {n: {"status": str(c.status), "detail": c.detail,
                                           **c.evidence} for n, c in found.items()}))
    return out


def shown_status(check_id: str, crit: Criterion) -> InStatus:
    """The status internet.nl shows for this criterion of this check (capped by each of its
    tests' requirement level; the worst of them when one criterion answers several)."""
    ids = internetnl_ids(check_id, crit.key)
    if not ids:
        return crit.status
    return InStatus.worst_of(crit.status.capped(BY_ID[i].worst) for i in ids)


_FINDING = {InStatus.FAILED: "fail", InStatus.WARNING: "warn", InStatus.ERROR: "error"}


def judge(check_id: str, criteria: list[Criterion], f: Findings) -> None:
    """One finding per criterion, at the severity internet.nl shows for it: failed -> fail,
    warning -> warn, error -> error; info, passed and not tested -> ok (said in the text)."""
    for crit in criteria:
        status = shown_status(check_id, crit)
        level = f" [{crit.level}]" if crit.level else ""
        shown = "" if status is InStatus.PASSED else f" ({status})"
        getattr(f, _FINDING.get(status, "ok"))(f"{crit.key}: {crit.detail}{level}{shown}")
