"""`watchtower remediate list` and `history` on a store with nothing in it say so (an empty
screen reads as a broken command)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from watchtower.cli import main
from watchtower.cli.remediate import EMPTY_LIST


@pytest.fixture()
def fleet(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(tomli_w.dumps({"store": {"database": f"sqlite:///{tmp_path / 'wt.db'}"},
                                   "zones": [{"name": "a.test"}]}))
    return path


@pytest.mark.parametrize(("extra", "said"), [([], EMPTY_LIST[False]),
                                             (["--all"], EMPTY_LIST[True])])
def test_empty_list_says_so(fleet: Path, extra: list[str], said: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["remediate", "list", "-c", str(fleet), *extra]) == 0
    assert capsys.readouterr().out == said + "\n"


def test_empty_history_says_so(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["remediate", "history", "-c", str(fleet)]) == 0
    assert capsys.readouterr().out == "no remediation actions recorded\n"
    assert main(["remediate", "history", "7", "-c", str(fleet)]) == 0
    assert capsys.readouterr().out == "no remediation actions recorded for #7\n"
