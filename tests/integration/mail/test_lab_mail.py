"""The lab's mail faults are found by the mail checks, end to end over the lab's own DNS,
HTTPS (MTA-STS) and SMTP (STARTTLS under the lab CA, an open relay on its own address)."""

from __future__ import annotations

from pathlib import Path

from watchtower.config import load_fleet
from watchtower.lab import Lab
from watchtower.probe.sweep import run_sweep, select_checks


def test_lab_mail_faults(tmp_path: Path) -> None:
    faults = {"alpha.test": set(), "bravo.test": {"spf-plus-all", "open-relay"},
              "charlie.test": {"spf-too-many-lookups", "no-dmarc"}}
    with Lab(tmp_path, domains=3, faults=faults, metrics_listen="127.0.0.1:0") as lab:
        fleet = load_fleet(lab.fleet_path)
        outcome = run_sweep(fleet, None, select_checks(["mail.*"]))
    status = {(r.check, r.target.name): str(r.status) for r in outcome.results}
    for check in ("mail.smtp.starttls", "mail.smtp.certificate", "mail.open-relay",
                  "mail.spf.policy", "mail.spf.lookups", "mail.dmarc.record", "mail.mta-sts",
                  "mail.dkim", "mail.mx", "mail.tls-rpt"):
        assert status[(check, "alpha.test")] == "ok", check
    assert status[("mail.spf.policy", "bravo.test")] == "fail"
    assert status[("mail.open-relay", "bravo.test")] == "fail"
    assert status[("mail.spf.lookups", "charlie.test")] == "fail"
    assert status[("mail.dmarc.record", "charlie.test")] == "fail"
