"""Each framework's criteria, in the state they are in for one domain: what a report's
"internet.nl web", "internet.nl mail" and "pas toe of leg uit" sections show.

Read from the latest verdict of each check on each of the domain's targets: a test computed
as a criterion comes from that criterion in the check's evidence (`evidence["criteria"]`);
a test that is a whole check's verdict comes from its status (ok -> passed, warn -> warning,
fail -> failed), capped at the test's requirement level as internet.nl caps it. Several
targets (every endpoint of a domain) combine to the worst. A test with no check, or whose
check did not run, is not tested; never passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from watchtower.compliance.explanations import Explanation, test_explanation
from watchtower.compliance.frameworks import (
    FRAMEWORKS,
    PAS_TOE_OF_LEG_UIT,
    InStatus,
    Standard,
    Test,
)

CHECK_STATUS = {"ok": InStatus.PASSED, "warn": InStatus.WARNING, "fail": InStatus.FAILED,
                "error": InStatus.ERROR}


class Line(Protocol):
    """What a state is read from: one check's latest verdict on one target."""

    check: str
    target: str
    evidence: dict[str, Any]

    @property
    def status(self) -> Any: ...


@dataclass(slots=True)
class TestState:
    """One internet.nl test on one domain."""

    test: Test
    status: InStatus
    detail: str = ""
    targets: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**self.test.to_json(), "status": str(self.status), "detail": self.detail,
                "targets": self.targets}


@dataclass(slots=True)
class StandardState:
    """One "pas toe of leg uit" standard on one domain: the worst of its tests."""

    standard: Standard
    status: InStatus
    tests: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"standard": str(self.standard), "status": str(self.status),
                "tests": self.tests}


def _from_line(test: Test, line: Line) -> tuple[InStatus, str] | None:
    if test.criterion is None:
        status = CHECK_STATUS.get(str(line.status), InStatus.ERROR)
        return status.capped(test.worst), ""
    for crit in line.evidence.get("criteria") or []:
        if crit.get("criterion") == test.criterion and test.id in (crit.get("internetnl") or {}):
            return InStatus(crit["internetnl"][test.id]), str(crit.get("detail") or "")
    return None


def test_state(test: Test, lines: Iterable[Line]) -> TestState:
    found = []
    for line in lines:
        if line.check != test.check:
            continue
        got = _from_line(test, line)
        if got is not None:
            found.append((line.target, *got))
    if test.check is None:
        return TestState(test, InStatus.NOT_TESTED, "watchtower cannot test this here")
    if not found:
        return TestState(test, InStatus.NOT_TESTED, f"{test.check} has no result")
    status = InStatus.worst_of(s for _, s, _ in found)
    details = [f"{t}: {d}" for t, s, d in found if s is status and d]
    return TestState(test, status, "; ".join(details[:3]), [t for t, _, _ in found])


def framework_states(lines: Iterable[Line],
                     explained: Mapping[str, Explanation] | None = None
                     ) -> dict[str, list[TestState]]:
    """Every test of every internet.nl framework, in its state for these lines; a test an
    explanation covers (valid today, for this domain) shows as explained, with its reason."""
    kept = list(lines)
    out = {name: [test_state(t, kept) for t in tests] for name, tests in FRAMEWORKS.items()}
    for states in out.values():
        for state in states:
            found = test_explanation(state.test.id, state.test.check, state.status,
                                     explained or {})
            if found is not None:
                state.detail = f"{found.text} (was {state.status}: {state.detail})"
                state.status = InStatus.EXPLAINED
    return out


def standard_states(frameworks: Mapping[str, list[TestState]]) -> list[StandardState]:
    """Each "pas toe of leg uit" standard: failed if a required test failed, else the worst
    status shown; not tested only when none of its tests ran (RPKI, here: always)."""
    by_standard: dict[Standard, list[TestState]] = {}
    for states in frameworks.values():
        for state in states:
            by_standard.setdefault(state.test.standard, []).append(state)
    return [StandardState(standard, InStatus.worst_of(s.status for s in states),
                          [s.test.id for s in states])
            for standard, states in by_standard.items()]


def to_json(lines: Iterable[Line], explained: Mapping[str, Explanation] | None = None
            ) -> dict[str, Any]:
    """The JSON of a domain's framework sections (report attachment)."""
    frameworks = framework_states(lines, explained)
    return {**{name: [s.to_json() for s in states] for name, states in frameworks.items()},
            PAS_TOE_OF_LEG_UIT: [s.to_json() for s in standard_states(frameworks)]}
