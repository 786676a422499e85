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
