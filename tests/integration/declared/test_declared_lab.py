"""dns.declared against the lab: the records derived from the lab's fleet file are all served
(alpha, charlie), and the lab's `single-ns` fault on bravo is a missing NS record."""

from __future__ import annotations

from typing import Any

from watchtower.model import Status
from watchtower.probe import registry
from watchtower.probe.sweep import run_sweep


def test_lab_zones_serve_their_declared_records(lab_fleet: Any) -> None:
    outcome = run_sweep(lab_fleet, None, {"dns.declared": registry.checks()["dns.declared"]})
    by = {r.target.name: r for r in outcome.results}
    assert by["alpha.test"].status == Status.OK, by["alpha.test"].summary
    assert by["charlie.test"].status == Status.OK, by["charlie.test"].summary
    assert by["bravo.test"].status == Status.FAIL
    assert "missing bravo.test. NS ns2.bravo.test." in by["bravo.test"].summary
    declared = {(r["name"], r["type"]) for r in by["alpha.test"].evidence["declared"]}
    assert ("s1._domainkey.alpha.test.", "TXT") in declared
    assert ("matrix.alpha.test.", "AAAA") in declared
    assert not by["alpha.test"].evidence["unlocated"]
