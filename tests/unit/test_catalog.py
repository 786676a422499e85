"""docs/check-catalog.md is generated from the registry and must be current; every check says
what it asks and how it judges."""

from __future__ import annotations

from pathlib import Path

from watchtower.probe import registry
from watchtower.probe.catalog import render

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_check_catalog_is_current() -> None:
    assert (DOCS / "check-catalog.md").read_text() == render(), (
        "docs/check-catalog.md is stale: run `python -m watchtower.probe.catalog > "
        "docs/check-catalog.md`")


def test_every_check_has_its_catalog_row() -> None:
    missing = [cid for cid, c in registry.checks().items()
               if not c.meta.query.strip() or not c.meta.verdicts.strip()]
    assert missing == [], "checks without CheckMeta.query/verdicts"


def test_the_departures_name_only_registered_checks() -> None:
    import re

    text = (DOCS / "check-catalog-departures.md").read_text()
    named = set(re.findall(r"^- `([a-z][a-z0-9.\-]+)`", text, re.M))
    assert named and named <= set(registry.checks())
