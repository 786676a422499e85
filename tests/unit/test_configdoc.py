"""docs/configuration.md is generated from the config models and must be current."""

from __future__ import annotations

import re
from pathlib import Path

from watchtower.config.doc import render, sections

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_reference_is_current() -> None:
    assert DOC.read_text() == render(), (
        "docs/configuration.md is stale: run `python -m watchtower.config.doc > "
        "docs/configuration.md`")


def _rows() -> list[tuple[str, str, str, str]]:
    """(table, key, type, meaning) of every row of the reference."""
    out = []
    for title, rows in sections():
        for row in rows:
            cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
            out.append((title, cells[0], cells[1], cells[-1]))
    return out


def test_every_key_says_what_it_means() -> None:
    empty = [f"{table} {key}" for table, key, _, meaning in _rows() if not meaning]
    assert not empty, f"keys without a meaning (give their Field a description): {empty}"


def test_every_number_with_a_fraction_names_its_unit() -> None:
    """A float is a duration or a share: the reader must not guess seconds from minutes."""
    units = re.compile(r"\b(seconds?|minutes?|hours?|days?|share|bytes)\b")
    unnamed = [f"{table} {key}: {meaning}" for table, key, kind, meaning in _rows()
               if kind.startswith("float") and not units.search(meaning)]
    assert not unnamed, unnamed
