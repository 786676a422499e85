"""`watchtower remediate plan` says, for each failing check with a known fix, the plan it made
or why it made none: against the lab with its `no-dmarc` fault on, the real mail.dmarc.record
check failing, and the real `dns.records` remediation planning through the lab's DNS API
(watchtower/lab/dnsapi.py, the PowerDNS calls) or finding no `[[dns_apis]]` entry for the zone.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from watchtower.config import database_url, load_fleet
from watchtower.lab import Lab
from watchtower.probe.sweep import run_sweep, select_checks
from watchtower.remediation.engine import Remediator
from watchtower.remediation.live_context import default_context
from watchtower.store import Store


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab domain, alpha.test, publishing no DMARC record."""
    lab = Lab(tmp_path_factory.mktemp("lab"), domains=1, faults={"alpha.test": {"no-dmarc"}},
              dns_port=0, https_port=0, metrics_listen="127.0.0.1:0")
    lab.start()
    yield lab
    lab.stop()


def _fleet_file(lab: Lab, tmp: Path, *, with_api: bool) -> Path:
    """The lab's fleet file with its own database, with or without the lab's `[[dns_apis]]`."""
    doc = tomllib.loads(lab.fleet_path.read_text())
    doc["store"]["database"] = f"sqlite:///{tmp / 'wt.db'}"
    if not with_api:
        del doc["dns_apis"]
    path = tmp / "fleet.toml"
    path.write_text(tomli_w.dumps(doc))
    store = Store(database_url(load_fleet(path).store))
    try:
        outcome = run_sweep(load_fleet(path), store, select_checks(["mail.dmarc.record"]))
    finally:
        store.close()
    (dmarc,) = outcome.of("mail.dmarc.record")
    assert dmarc.status == "fail", dmarc.summary
    return path


def _plan(path: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "watchtower.cli", "remediate", "plan", "-c",
                           str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_without_a_dns_api_the_plan_says_why_nothing_was_planned(
        lab: Lab, tmp_path: Path) -> None:
    out = _plan(_fleet_file(lab, tmp_path, with_api=False))
    assert out.startswith("nothing planned"), out
    assert ("dns.records could fix mail.dmarc.record on alpha.test, but no [[dns_apis]] entry "
            "manages a zone containing _dmarc.alpha.test") in out


def test_with_the_lab_dns_api_a_plan_waits_and_once_approved_is_applied_and_verified(
        lab: Lab, tmp_path: Path) -> None:
    """alpha.test is a zone and a mail domain in the lab: the fix is verified by
    mail.dmarc.record on the mail domain, not by nothing on the zone (which rolled it back)."""
    path = _fleet_file(lab, tmp_path, with_api=True)
    first = _plan(path)
    assert "dns.records on alpha.test" in first and "awaiting_approval" in first, first
    assert "set _dmarc.alpha.test TXT through lab-dns" in first
    second = _plan(path)
    assert second.startswith("nothing planned"), second
    assert ("dns.records could fix mail.dmarc.record on alpha.test, but plan #1 for alpha.test "
            "is still awaiting_approval (one open plan per fix and target)") in second

    fleet = load_fleet(path)
    store = Store(database_url(fleet.store))
    try:
        remediator = Remediator(fleet, store, default_context(fleet, store))
        remediator.approve(1, "olga")
        (done,) = remediator.apply_approved()
        trail = [(a.action, a.ok, a.detail) for a in remediator.history(1)]
        assert done.state == "applied", trail
        assert ("verify", True, "mail.dmarc.record: ok") in trail
    finally:
        store.close()
