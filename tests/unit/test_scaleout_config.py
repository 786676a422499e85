"""`[scaleout]` (watchtower/config/scaleout.py): placements, quorums, and clear errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from watchtower.config import Fleet


def fleet(scaleout: dict[str, object]) -> Fleet:
    return Fleet.model_validate({"scaleout": scaleout})


def test_default_is_one_local_vantage_with_a_quorum_of_one() -> None:
    placed = Fleet().scaleout.placement_for("web.hsts", "www.a.test")
    assert (placed.vantages, placed.quorum()) == (["local"], 1)


def test_first_placement_wins_else_every_vantage_by_majority() -> None:
    f = fleet({"vantages": ["ams", "fra", "nyc"], "placement": [
        {"checks": ["web.*"], "targets": ["*.a.test"], "vantages": ["ams", "fra"],
         "fail_at": 2},
        {"checks": ["web.*"], "vantages": ["nyc"]}]})
    assert f.scaleout.placement_for("web.hsts", "www.a.test").vantages == ["ams", "fra"]
    assert f.scaleout.placement_for("web.hsts", "b.test").vantages == ["nyc"]
    other = f.scaleout.placement_for("dns.ns.count", "a.test")
    assert (other.vantages, other.quorum()) == (["ams", "fra", "nyc"], 2)


@pytest.mark.parametrize(("scaleout", "words"), [
    ({"vantages": ["ams"], "placement": [{"vantages": ["lon"]}]}, "not in [scaleout] vantages"),
    ({"vantages": ["ams", "fra"], "placement": [{"vantages": ["ams"], "fail_at": 2}]},
     "fail_at = 2 but only 1"),
    ({"vantages": ["Ams Terdam"]}, "vantage names"),
    ({"vantages": ["ams", "ams"]}, "named twice"),
    ({"vantages": []}, "at least one vantage"),
])
def test_bad_settings_say_why(scaleout: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words.replace("[", r"\[").replace("]", r"\]")):
        fleet(scaleout)
