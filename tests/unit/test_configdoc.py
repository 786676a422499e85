"""docs/configuration.md is generated from the config models and must be current."""

from __future__ import annotations

from pathlib import Path

from watchtower.config.doc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_reference_is_current() -> None:
    assert DOC.read_text() == render(), (
        "docs/configuration.md is stale: run `python -m watchtower.config.doc > "
        "docs/configuration.md`")
