"""The demo's mail host: `watchtower lab` serves submission, IMAPS and ManageSieve in pure
Python, signs with the lab's DKIM key, filters GTUBE, runs Sieve at delivery and seals at a
forwarding hop; every mail-host check passes against it through the lab's DNS, and each lab
mail-host fault, switched while the lab runs, shows the verdict it is there to show."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from watchtower.config import Fleet, load_fleet
from watchtower.lab import Lab
from watchtower.lab.faults import FaultSwitch
from watchtower.model import Result
from watchtower.probe.sweep import run_sweep, select_checks

from .conftest import FULL_CHECKS


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Fleet]]:
    with Lab(tmp_path_factory.mktemp("lab"), domains=2, faults={},
             metrics_listen="127.0.0.1:0") as lab:
        yield lab, load_fleet(lab.fleet_path)


def _sweep(fleet: Fleet, checks: list[str]) -> dict[str, Result]:
    return {r.check: r for r in run_sweep(fleet, None, select_checks(checks)).results}


def test_lab_mail_host_passes_every_mail_host_check(lab: tuple[Lab, Fleet]) -> None:
    the_lab, fleet = lab
    assert [m.name for m in fleet.mail_hosts] == ["mail.alpha.test"]
    assert {m.name: m.mail_host for m in fleet.mail_domains}["alpha.test"] == \
        "mail.alpha.test"
    results = _sweep(fleet, FULL_CHECKS)
    assert set(FULL_CHECKS) <= set(results)  # and the prerequisites the sweep added
    for check, result in results.items():
        assert str(result.status) == "ok", (check, result.summary)
    rt = results["mail.roundtrip"]
    assert rt.evidence["dkim"][0]["pass"] and rt.evidence["dkim"][0]["d"] == "alpha.test"
    assert "ARC cv=pass (i=1 d=alpha.test s=s1)" in rt.summary
    password = (the_lab.dir / "mail-probe-password").read_text().strip()
    assert password not in repr(list(results.values()))
    maildir = the_lab.dir / "maildir" / "watchtower-probe@alpha.test"
    assert not any(list((maildir / sub).iterdir()) for sub in ("new", "cur"))


@pytest.mark.parametrize(("fault", "check", "status", "says"), [
    ("spam-filter-off", "mail.spam-filter", "fail", "as ordinary mail"),
    ("spam-junk", "mail.spam-filter", "warn", "delivered into Junk"),
    ("sieve-plaintext-auth", "mail.sieve", "fail", "offers SASL PLAIN before STARTTLS"),
    ("sieve-not-run", "mail.sieve", "fail", "Sieve did not run at delivery"),
    ("dkim-key-rotated", "mail.dkim.key-match", "fail", "but DNS publishes"),
    ("arc-broken-seal", "mail.roundtrip", "fail", "ARC chain invalid"),
])
def test_each_lab_mail_host_fault_shows_its_verdict(lab: tuple[Lab, Fleet], fault: str,
                                                    check: str, status: str, says: str
                                                    ) -> None:
    the_lab, fleet = lab
    switch = FaultSwitch(the_lab)
    switch.set("alpha.test", fault, True)
    try:
        result = _sweep(fleet, [check])[check]
    finally:
        switch.set("alpha.test", fault, False)
    assert str(result.status) == status, result.summary
    assert says in result.summary
    assert str(_sweep(fleet, [check])[check].status) == "ok"  # switched off: healthy again


def test_mail_host_faults_apply_to_the_mail_hosts_domain_only(lab: tuple[Lab, Fleet]) -> None:
    from watchtower.lab.faults import FaultError

    with pytest.raises(FaultError):
        FaultSwitch(lab[0]).set("bravo.test", "sieve-not-run", True)


def test_the_lab_fleet_keeps_host_checks_off_its_mail_host_entry(lab: tuple[Lab, Fleet]
                                                                 ) -> None:
    """lab-mail is where the DKIM keys are read (this machine), not a NixOS host: no check
    runs on it (a hand-kept list of host checks once missed host.store-integrity, and the demo
    showed its error)."""
    from watchtower.probe import registry
    from watchtower.probe.runner import plan_jobs

    _lab, fleet = lab
    assert [h.name for h in fleet.hosts] == ["lab-mail"]
    on_it = [j.check.meta.id for j in plan_jobs(fleet, registry.checks())
             if j.target.name == "lab-mail"]
    assert not on_it, on_it


def test_the_lab_key_command_prints_only_the_public_half(tmp_path: Path) -> None:
    import subprocess
    import sys

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "k.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    out = subprocess.run([sys.executable, "-m", "watchtower.lab.keyhalf", str(path)],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in out
    missing = subprocess.run([sys.executable, "-m", "watchtower.lab.keyhalf",
                              str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 1
