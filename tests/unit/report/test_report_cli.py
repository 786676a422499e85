"""`watchtower report` on a fleet whose store is empty: scoping mistakes are usage errors, and
an empty listing says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from watchtower.cli import main


def _fleet(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(tomli_w.dumps({
        "store": {"database": f"sqlite:///{tmp_path / 'wt.db'}"},
        "zones": [{"name": "a.test", "customer": "acme"}, {"name": "b.test",
                                                           "customer": "globex"}],
        **extra}))
    return path


def test_unknown_customer_exits_2_naming_the_known_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = _fleet(tmp_path)
    out = tmp_path / "r.html"
    assert main(["report", "-c", str(fleet), "--customer", "acmee", "--format", "html",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("error: --customer acmee: no entry of the fleet file has customer = "
                           "'acmee'; known: acme, globex")
    assert not out.exists()  # nothing written that could be mailed
    assert not (tmp_path / "wt.db").exists()  # and the store was not even opened


def test_a_known_customer_still_reports(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "-c", str(_fleet(tmp_path)), "--customer", "acme"]) == 0
    assert "a.test" in capsys.readouterr().out


def test_report_entry_with_unknown_customer_is_a_config_problem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = _fleet(tmp_path, notifications={"email": [{
        "name": "mail", "host": "127.0.0.1", "sender": "wt@a.test", "to": ["ops@a.test"]}]},
        reports=[{"name": "monthly", "customer": "acmee", "recipients": ["c@a.test"],
                  "channel": "mail", "cron": "0 6 1 * *"}])
    assert main(["validate", "-c", str(fleet)]) == 2
    err = capsys.readouterr().err
    assert "reports[0].customer: no entry of the fleet file has customer = 'acmee'; " \
           "known: acme, globex" in err


def test_empty_list_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "-c", str(_fleet(tmp_path)), "--list"]) == 0
    assert capsys.readouterr().out.startswith("no stored reports in sqlite:///")



class _NoStore:
    """In place of a PostgreSQL store that is not there: the listing finds nothing in it."""

    def __init__(self, _url: str) -> None:
        pass

    def close(self) -> None:
        pass


def test_empty_list_hides_the_database_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The listing names the store it read, never the password in its URL."""
    path = _fleet(tmp_path)
    url = "postgresql+psycopg://wt:s3cret-pw@db.invalid/wt"
    path.write_text(path.read_text().replace(f"sqlite:///{tmp_path / 'wt.db'}", url))
    monkeypatch.setattr("watchtower.store.Store", _NoStore)
    monkeypatch.setattr("watchtower.report.list_reports", lambda _store: [])
    assert main(["report", "-c", str(path), "--list"]) == 0
    out = capsys.readouterr().out
    assert "s3cret-pw" not in out and "postgresql+psycopg://wt:***@db.invalid/wt" in out
