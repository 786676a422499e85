"""The command line: listing checks is a stable JSON interface."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watchtower.cli import main


def test_checks_json_lists_every_registered_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checks", "--format", "json"]) == 0
    checks = json.loads(capsys.readouterr().out)["checks"]
    ids = {c["id"] for c in checks}
    assert {"dns.ns.count", "web.tls.certificate"} <= ids
    for c in checks:
        assert set(c) >= {"id", "family", "applies_to", "interval", "timeout", "standards"}
        assert c["standards"], f"{c['id']} cites no standard"


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as err:
        main(["check"])
    assert err.value.code == 2


def test_checks_json_names_the_fixes_the_engine_would_run(capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    """The check -> remediation links come from the remediations' triggers alone: drift.generation
    is fixed by nixos.redeploy (what the engine runs), and a DNS template of the fleet file adds
    its check to dns.records."""
    import json

    from watchtower.cli import main

    assert main(["checks", "--format", "json"]) == 0
    entries = {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert entries["drift.generation"]["remediations"] == ["nixos.redeploy"]
    assert entries["mail.dmarc.record"]["remediations"] == ["dns.records"]
    assert entries["web.hsts"]["remediations"] == []
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[remediation.dns_templates."web.hsts"]\nname = "{domain}"\ntype = "TXT"\n'
                     'content = "x"\n')
    assert main(["checks", "--format", "json", "-c", str(fleet)]) == 0
    entries = {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert entries["web.hsts"]["remediations"] == ["dns.records"]


@pytest.mark.parametrize("seconds", ["1", "100000"])
def test_lab_interval_out_of_range_is_a_usage_error_before_anything_starts(
        seconds: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "--dir", str(tmp_path / "lab"), "--interval", seconds]) == 2
    assert "seconds between sweeps, 5 to 86400" in capsys.readouterr().err
    assert not (tmp_path / "lab" / "fleet.toml").exists()
