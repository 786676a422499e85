"""Checks whose verdict is a list of graded criteria (NCSC-NL TLS, internet.nl's HTTP headers,
DANE, IPv6 reachability): the criteria kept in the evidence, the verdict as internet.nl shows it.
The criterion model and its rules are watchtower/compliance/criteria.py's."""

from __future__ import annotations

from typing import Any

from watchtower.compliance.criteria import Criterion, judge
from watchtower.model import Findings, Verdict
from watchtower.probe.api import Check, Facts


class GradedCheck(Check):
    """A check whose verdict is its criteria: they are kept in its evidence (for reports and
    the internet.nl comparison) and judged as internet.nl shows them."""

    def criteria(self, facts: Facts) -> list[Criterion]:
        raise NotImplementedError

    def evidence(self, facts: Facts) -> dict[str, Any]:
        ev = super().evidence(facts)
        ev["criteria"] = [c.to_json(self.meta.id) for c in self.criteria(facts)]
        return ev

    def judged(self, facts: Facts, ok_summary: str) -> Verdict:
        f = Findings()
        judge(self.meta.id, self.criteria(facts), f)
        return f.verdict(ok_summary)
