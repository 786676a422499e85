"""Availability signals (watchtower/probe/availability.py) read against the checks' own
fixture cases: what each verdict branch says about whether the service answered."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from watchtower.model import Result, Status, Target, TargetKind
from watchtower.probe import availability, registry

T = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checks"


def _answers(check_id: str) -> dict[str, bool | None]:
    """Fixture case name -> the answer its judged result carries."""
    check = registry.checks()[check_id]
    out = {}
    for case in json.loads((FIXTURES / f"{check_id}.json").read_text()):
        verdict = check.judge(case["facts"])
        out[case["name"]] = availability.answered(check_id, verdict.status,
                                                  check.evidence(case["facts"]))
    return out


@pytest.mark.parametrize("check_id", list(availability.SIGNALS))
def test_every_signal_is_a_registered_check_whose_passing_cases_answered(check_id: str
                                                                         ) -> None:
    check = registry.checks()[check_id]
    passing = [c["name"] for c in json.loads((FIXTURES / f"{check_id}.json").read_text())
               if c["status"] == "ok"]
    answers = _answers(check_id)
    assert passing and check.meta.id == check_id
    assert all(answers[name] in (True, None) for name in passing), answers


def test_a_service_that_answers_but_does_not_comply_is_available() -> None:
    """Failing compliance is not downtime: a bad certificate still completed the handshake,
    an MX that refuses STARTTLS still greeted."""
    tls = _answers("web.tls.certificate")
    assert tls["expired"] is tls["untrusted chain"] is tls["wrong name"] is True
    assert tls["no certificate"] is False
    smtp = _answers("mail.smtp.starttls")
    assert smtp["STARTTLS not offered"] is smtp["TLS 1.0 negotiated"] is True
    assert smtp["MX unreachable"] is smtp["MX timed out"] is smtp["no 220 banner"] is False
    assert smtp["null MX"] is None  # accepts no mail: no mail service to be up
    dns = _answers("dns.ns.authoritative")
    assert dns["second refuses"] is True and dns["no server answers"] is False


def test_a_probe_that_could_not_run_for_its_own_reasons_is_not_judged() -> None:
    assert availability.answered("storage.health", Status.ERROR,
                                 {"error": "admin token refused", "error_kind": "auth"}) is None
    assert availability.answered("fedi.health", Status.ERROR,
                                 {"error": "timed out after 10s", "error_kind": "timeout"}) \
        is False
    assert availability.answered("web.hsts", Status.FAIL, {}) is None  # not a signal


def test_the_sweep_stamps_each_result() -> None:
    target = Target(TargetKind.ENDPOINT, "a.test:443")
    results = [Result("web.tls.certificate", "web", target, Status.FAIL, "expired",
                      {"leaf": {"subject": "CN=a.test"}}, 1.0, T),
               Result("web.hsts", "web", target, Status.FAIL, "no HSTS", {}, 1.0,
                      T)]
    availability.stamp(results)
    assert [r.answered for r in results] == [True, None]

