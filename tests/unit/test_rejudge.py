"""Stored evidence judged again later gives the verdict it gave when it was observed.

Every fixture case goes through the runner as a probe whose `gather` returns the case's facts:
the runner stamps `observed_at` (the fixture's own time of observation, the clock travelled
there), judges, and keeps evidence. That evidence, stored as JSON, is judged again a day later
(the clock travelled on by time-machine, which moves `datetime.now`, `time.time` and friends
alike) and must give the same status and summary: a judgement that read the clock instead of
`observed_at(facts)` would see a certificate a day closer to expiry, a backup a day older.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine

from watchtower.config import Fleet
from watchtower.model import Target
from watchtower.probe import registry
from watchtower.probe.api import OBSERVED_AT, Check, Facts, ProbeContext
from watchtower.probe.clients import SweepClients
from watchtower.probe.runner import Job, execute

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checks"
#: When a case pins no observation time, it is observed at this instant.
DEFAULT_OBSERVED = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
LATER = dt.timedelta(days=1)
#: Checks whose evidence deliberately keeps less than their facts, so that judging the
#: evidence is not judging the facts (and none of them depends on time).
LOSSY_EVIDENCE = {
    # the served chains' DER is replaced by a count to keep evidence small
    "mail.dane": "chain_der is summarised in the evidence",
}


def _cases() -> list[Any]:
    out = []
    for path in sorted(FIXTURES.glob("*.json")):
        if path.stem in LOSSY_EVIDENCE:
            continue
        for case in json.loads(path.read_text()):
            out.append(pytest.param(path.stem, case, id=f"{path.stem}:{case['name']}"))
    return out


class Replay(Check):
    """The check under test, with `gather` answering the recorded facts."""

    def __init__(self, inner: Check, facts: Facts) -> None:
        self.inner = inner
        self.facts = facts

    @property
    def meta(self) -> Any:  # the inner check's identity, so results carry its id
        return self.inner.meta

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return copy.deepcopy(self.facts)

    def judge(self, facts: Facts) -> Any:
        return self.inner.judge(facts)

    def evidence(self, facts: Facts) -> dict[str, Any]:
        return self.inner.evidence(facts)


@pytest.fixture(scope="module")
def clients() -> Iterator[SweepClients]:
    with SweepClients(Fleet.model_validate({"probe": {"nameservers": ["127.0.0.1:9"]}})) as c:
        yield c


def _observed(case: dict[str, Any]) -> dt.datetime:
    value = case["facts"].get(OBSERVED_AT)
    return dt.datetime.fromisoformat(value) if value else DEFAULT_OBSERVED


@pytest.mark.parametrize(("check_id", "case"), _cases())
def test_stored_evidence_judged_a_day_later_gives_the_same_verdict(
        check_id: str, case: dict[str, Any], clients: SweepClients) -> None:
    check = registry.checks()[check_id]
    facts = {k: v for k, v in case["facts"].items() if k != OBSERVED_AT}
    target = Target(check.meta.applies_to[0], "rejudge.test")
    when = _observed(case)
    with time_machine.travel(when, tick=False):
        result = execute(Job(Replay(check, facts), target, 10.0),
                         clients.context(10.0 ** 9))
    assert str(result.status) == case["status"], result.summary
    assert result.evidence[OBSERVED_AT] == result.at.isoformat() == when.isoformat()
    stored = json.loads(json.dumps(result.evidence))
    with time_machine.travel(when + LATER, tick=False):
        again = check.judge(stored)
    assert (again.status, again.summary) == (result.status, result.summary)


def test_the_test_has_teeth() -> None:
    """Without the stamp, a time-dependent judgement cannot run: it never falls back to the
    clock (which is what would make a re-judged verdict drift)."""
    cert = json.loads((FIXTURES / "web.tls.certificate.json").read_text())[0]["facts"]
    assert OBSERVED_AT in cert
    check = registry.checks()["web.tls.certificate"]
    with pytest.raises(ValueError, match=OBSERVED_AT):
        check.judge({k: v for k, v in cert.items() if k != OBSERVED_AT})
