"""Data-driven judgement tests: every tests/fixtures/checks/<check id>.json is a list of cases
`{"name", "facts", "status", "summary_contains"?}` judged by that check without any network.

Adding a verdict branch to a check means adding a case here, not writing a new test function.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from watchtower.probe import registry

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checks"


def _cases() -> list[Any]:
    out = []
    for path in sorted(FIXTURES.glob("*.json")):
        for case in json.loads(path.read_text()):
            out.append(pytest.param(path.stem, case, id=f"{path.stem}:{case['name']}"))
    return out


@pytest.mark.parametrize(("check_id", "case"), _cases())
def test_judgement(check_id: str, case: dict[str, Any]) -> None:
    checks = registry.checks()
    assert check_id in checks, f"fixture file for unknown check {check_id}"
    verdict = checks[check_id].judge(case["facts"])
    assert str(verdict.status) == case["status"], verdict.summary
    for fragment in ([case["summary_contains"]] if isinstance(case.get("summary_contains"), str)
                     else case.get("summary_contains", [])):
        assert fragment in verdict.summary


def test_every_fixture_file_names_a_registered_check() -> None:
    ids = set(registry.checks())
    unknown = [p.stem for p in FIXTURES.glob("*.json") if p.stem not in ids]
    assert not unknown
