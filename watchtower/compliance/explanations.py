"""Comply or explain: an operator's recorded reason why a criterion is not met on a domain.

The Forum Standaardisatie's "pas toe of leg uit" lets an organisation deviate from a standard
when it explains why. An explanation names the domain, the criterion (an internet.nl test id
such as `web_https_tls_version`, or a watchtower check id for what internet.nl does not test),
who gave it, why, and until when. While valid, a criterion it covers shows as `explained`
with its reason and is not scored as a failure; from the day after `until` it counts again as
what it is. Explanations are judged against a day the caller passes (the report's date, the
dashboard's today): nothing here reads the clock.

Kept in the store (`Store.explanations`, never deleted, so the table is the audit of who
recorded or revoked what); `record`, `revoke` and `in_force` below are the way in and out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from watchtower.compliance.frameworks import BY_ID, InStatus, internetnl_ids

if TYPE_CHECKING:
    from watchtower.compliance.score import Placement
    from watchtower.store import ExplanationRow, Store

#: Statuses an explanation can cover: what would otherwise count against the domain.
EXPLAINABLE = frozenset({InStatus.FAILED, InStatus.WARNING, InStatus.INFO})
#: Check statuses an explanation can cover (the same, as watchtower's verdicts).
EXPLAINABLE_CHECK = frozenset({"fail", "warn"})
MAX_DAYS = 3 * 366  # an explanation is revisited at least every three years


class ExplanationError(ValueError):
    """An explanation that cannot be recorded (says which field and why)."""


@dataclass(frozen=True, slots=True)
class Explanation:
    domain: str
    criterion: str
    who: str
    why: str
    until: dt.date
    id: int | None = None
    created_at: dt.datetime | None = None

    def valid_on(self, day: dt.date) -> bool:
        """Valid through `until`; the day after, the criterion counts again."""
        return day <= self.until

    @property
    def text(self) -> str:
        return f"explained by {self.who} until {self.until.isoformat()}: {self.why}"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "domain": self.domain, "criterion": self.criterion,
                "who": self.who, "why": self.why, "until": self.until.isoformat(),
                "created_at": self.created_at.isoformat() if self.created_at else None}


def validate(domain: str, criterion: str, who: str, why: str, until: dt.date, *,
             today: dt.date, check_ids: Iterable[str]) -> Explanation:
    """A new explanation, or ExplanationError naming what is wrong with it."""
    domain = domain.strip().lower().rstrip(".")
    if not domain or "." not in domain:
        raise ExplanationError(f"domain: {domain!r} is not a domain name")
    if criterion not in BY_ID and criterion not in set(check_ids):
        raise ExplanationError(f"criterion: {criterion!r} is neither an internet.nl test id "
                               "(watchtower checks --format json) nor a check id")
    if not who.strip():
        raise ExplanationError("who: an explanation names the person giving it")
    if len(why.strip()) < 10:
        raise ExplanationError("why: say why the criterion is not met (10 characters or more)")
    if until < today:
        raise ExplanationError(f"until: {until.isoformat()} is already past")
    if (until - today).days > MAX_DAYS:
        raise ExplanationError(f"until: at most {MAX_DAYS} days ahead")
    return Explanation(domain, criterion, who.strip(), why.strip(), until)


def active(explanations: Iterable[Explanation], day: dt.date) -> dict[tuple[str, str],
                                                                      Explanation]:
    """(domain, criterion) -> the valid explanation on `day` (the longest-lasting one)."""
    out: dict[tuple[str, str], Explanation] = {}
    for e in explanations:
        if e.valid_on(day):
            key = (e.domain, e.criterion)
            if key not in out or out[key].until < e.until:
                out[key] = e
    return out


def for_domain(valid: Mapping[tuple[str, str], Explanation], domain: str
               ) -> dict[str, Explanation]:
    """criterion -> explanation, for one domain."""
    return {c: e for (d, c), e in valid.items() if d == domain}


def test_explanation(test_id: str, check_id: str | None, status: InStatus,
                     explained: Mapping[str, Explanation]) -> Explanation | None:
    """The explanation that covers an internet.nl test in this status, if any (one for the
    test itself, or for the whole check that computes it)."""
    if status not in EXPLAINABLE:
        return None
    return explained.get(test_id) or (explained.get(check_id) if check_id else None)


def check_explanation(check_id: str, status: str, evidence: Mapping[str, Any],
                      explained: Mapping[str, Explanation]) -> Explanation | None:
    """The explanation that covers a check's failing verdict, if any: one for the check id, or
    for its internet.nl tests, every one of which that is not passed must be explained (a
    check failing on two criteria is not excused by explaining one)."""
    if status not in EXPLAINABLE_CHECK:
        return None
    if check_id in explained:
        return explained[check_id]
    open_tests = _open_tests(check_id, evidence)
    if not open_tests:
        ids = internetnl_ids(check_id, None)  # a check that is one internet.nl test
        return explained.get(ids[0]) if len(ids) == 1 else None
    found = [explained.get(t) for t in open_tests]
    return found[0] if all(found) else None


def _open_tests(check_id: str, evidence: Mapping[str, Any]) -> list[str]:
    """The internet.nl tests of a check's criteria that are not passed in this evidence."""
    out = []
    for crit in evidence.get("criteria") or []:
        for test_id, shown in (crit.get("internetnl") or {}).items():
            if InStatus(shown) in (InStatus.FAILED, InStatus.WARNING):  # what fails or warns
                out.append(test_id)
    return out


def scored_statuses(store: Store, where: Placement, day: dt.date
                    ) -> list[tuple[str, str, str, str]]:
    """(target, kind, family, status) of every current verdict as the score counts it: a
    failure or warning that an explanation valid on `day` covers reads `explained`, as in the
    reports (the dashboard's compliance page)."""
    valid = active(in_force(store), day)
    states = store.current()
    bodies = store.evidence_bodies([s.evidence_id for s in states
                                    if valid and s.status in EXPLAINABLE_CHECK])
    out = []
    for s in states:
        status = s.status
        mine = for_domain(valid, where.of(s.target, s.target_kind)[0]) if valid else {}
        if mine and check_explanation(s.check_id, status, bodies.get(s.evidence_id or 0, {}),
                                      mine) is not None:
            status = "explained"
        out.append((s.target, s.target_kind, s.family, status))
    return out


# -- kept in the store -----------------------------------------------------------------------


def of_row(row: ExplanationRow) -> Explanation:
    return Explanation(row.domain, row.criterion, row.who, row.why, row.until, row.id,
                       row.created_at)


def record(store: Store, domain: str, criterion: str, who: str, why: str, until: dt.date, *,
           now: dt.datetime, check_ids: Iterable[str]) -> ExplanationRow:
    """Validate and store a new explanation (ExplanationError says what is wrong)."""
    e = validate(domain, criterion, who, why, until, today=now.date(), check_ids=check_ids)
    return store.explanations.insert(e.domain, e.criterion, e.who, e.why, e.until, now)


def revoke(store: Store, explanation_id: int, who: str, reason: str, *, now: dt.datetime
           ) -> ExplanationRow:
    """Withdraw an explanation still in force; the row stays, marked with who and why."""
    if not who.strip():
        raise ExplanationError("who: a revocation names the person withdrawing it")
    row = store.explanations.mark_revoked(explanation_id, who.strip(), reason, now)
    if row is not None:
        return row
    old = store.explanations.get(explanation_id)
    if old is None:
        raise ExplanationError(f"id: no explanation #{explanation_id}")
    when = f"{old.revoked_at:%Y-%m-%d}" if old.revoked_at else "?"
    raise ExplanationError(f"id: #{explanation_id} was revoked on {when} by {old.revoked_by}")


def in_force(store: Store) -> list[Explanation]:
    """Every explanation not revoked (expired ones too: validity is judged per day)."""
    return [of_row(r) for r in store.explanations.rows()]
