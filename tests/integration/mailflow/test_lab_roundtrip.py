"""The demo's mail host: `watchtower lab` serves submission and IMAPS in pure Python, signs with
the lab's DKIM key, and the three mail-flow checks pass against it through the lab's DNS."""

from __future__ import annotations

from pathlib import Path

from watchtower.config import load_fleet
from watchtower.lab import Lab
from watchtower.probe.sweep import run_sweep, select_checks

from .conftest import MAILFLOW_CHECKS


def test_lab_mail_host_round_trip(tmp_path: Path) -> None:
    with Lab(tmp_path, domains=2, faults={}, metrics_listen="127.0.0.1:0") as lab:
        fleet = load_fleet(lab.fleet_path)
        assert [m.name for m in fleet.mail_hosts] == ["mail.alpha.test"]
        assert {m.name: m.mail_host for m in fleet.mail_domains}["alpha.test"] == \
            "mail.alpha.test"
        outcome = run_sweep(fleet, None, select_checks(MAILFLOW_CHECKS))
        password = (tmp_path / "mail-probe-password").read_text().strip()
    results = {r.check: r for r in outcome.results}
    assert set(results) == set(MAILFLOW_CHECKS)
    for check, result in results.items():
        assert str(result.status) == "ok", (check, result.summary)
    rt = results["mail.roundtrip"].evidence
    assert rt["dkim"][0]["pass"] and rt["dkim"][0]["d"] == "alpha.test"
    assert password not in repr(outcome.results)
    maildir = tmp_path / "maildir" / "watchtower-probe@alpha.test"
    assert not any(list((maildir / sub).iterdir()) for sub in ("new", "cur"))
