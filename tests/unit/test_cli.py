"""The command line: listing checks is a stable JSON interface."""

from __future__ import annotations

import json

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
