"""Advisory feeds (vulnix, OSV), CVSS scoring, the expiring whitelist and matching."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from watchtower.inventory.advisories import (
    AdvisoryError,
    cvss3_base_score,
    load_feeds,
    load_whitelist,
    match,
    parse_feed,
    parse_whitelist,
)
from watchtower.inventory.storepaths import Package

FEEDS = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"


@pytest.mark.parametrize(("vector", "score"), [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N", 5.4),
    ("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
    ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
])
def test_cvss3_base_scores_match_the_specification_examples(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


def test_cvss_rejects_other_vectors() -> None:
    assert cvss3_base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P") is None
    assert cvss3_base_score("CVSS:3.1/AV:X") is None


PKGS = [Package("openssl", "3.0.13"), Package("matrix-synapse", "1.120.0"),
        Package("mastodon", "4.3.1"), Package("curl", "8.5.0")]


def test_vulnix_feed_matches_exact_versions_and_skips_vulnix_whitelisted() -> None:
    advisories = load_feeds([str(FEEDS / "vulnix.json")])
    found = {(m["id"], m["package"]): m for m in match(advisories, PKGS)}
    assert found[("CVE-2024-5535", "openssl")]["severity"] == "critical"
    assert found[("CVE-2024-5535", "openssl")]["score"] == 9.1
    assert ("CVE-2024-2511", "openssl") in found
    assert ("CVE-2023-0001", "openssl") not in found  # vulnix said whitelisted
    assert not any(p == "curl" for _, p in found)  # vulnix saw curl 8.4.0, we run 8.5.0


def test_osv_ranges_versions_and_severity() -> None:
    advisories = load_feeds([str(FEEDS / "osv.json")])
    found = {m["id"]: m for m in match(advisories, PKGS)}
    assert found["GHSA-test-mast"]["severity"] == "critical"  # database_specific CRITICAL
    assert found["GHSA-test-mast"]["fixed"] == ["4.3.2"]
    assert found["OSV-TEST-SYNAPSE"]["score"] == 6.4  # scored from the CVSS vector
    assert found["OSV-TEST-SYNAPSE"]["severity"] == "medium"
    assert "OSV-TEST-FIXED" not in found  # matrix-synapse 1.120.0 is past "fixed"
    assert "OSV-TEST-LAST" not in found  # last_affected 1.119.0 < 1.120.0
    assert "OSV-TEST-LISTED" in found  # explicit versions list


@pytest.mark.parametrize(("events", "version", "affected"), [
    ([{"introduced": "0"}, {"fixed": "2.0"}], "1.9", True),
    ([{"introduced": "0"}, {"fixed": "2.0"}], "2.0", False),
    ([{"introduced": "1.0"}, {"last_affected": "1.5"}], "1.5", True),
    ([{"introduced": "1.0"}, {"last_affected": "1.5"}], "1.6", False),
    ([{"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "2.0"}, {"fixed": "2.1"}],
     "1.5", False),
    ([{"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "2.0"}, {"fixed": "2.1"}],
     "2.0.5", True),
    ([{"introduced": "1.0"}], "0.9", False),
])
def test_osv_range_semantics(events: list[dict[str, str]], version: str, affected: bool) -> None:
    record = {"id": "X", "affected": [{"package": {"name": "p"},
                                       "ranges": [{"type": "ECOSYSTEM", "events": events}]}]}
    [adv] = parse_feed(record, "t")
    assert adv.affects(version) is affected


def test_git_ranges_are_ignored() -> None:
    record = {"id": "X", "affected": [{"package": {"name": "p"}, "ranges": [
        {"type": "GIT", "events": [{"introduced": "0"}, {"fixed": "abc123"}]}]}]}
    [adv] = parse_feed(record, "t")
    assert not adv.affects("1.0")


def test_unknown_feed_shape_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"foo": 1}]))
    with pytest.raises(AdvisoryError, match="neither vulnix"):
        load_feeds([str(bad)])
    with pytest.raises(AdvisoryError, match="cannot read"):
        load_feeds([str(tmp_path / "missing.json")])


def test_whitelist_toml_and_matching_attaches_entry() -> None:
    entries = load_whitelist(str(FEEDS / "whitelist.toml"))
    keys = {e.key: e for e in entries}
    assert keys["openssl-3.0.13"].until == dt.date(2025, 3, 1)
    assert keys["openssl-3.0.13"].ids == {"CVE-2024-5535"}
    advisories = load_feeds([str(FEEDS / "vulnix.json"), str(FEEDS / "osv.json")])
    found = {m["id"]: m for m in match(advisories, PKGS, entries)}
    assert found["CVE-2024-5535"]["whitelist"]["entry"] == "openssl-3.0.13"
    assert found["CVE-2024-2511"]["whitelist"] is None  # entry names another CVE
    # a package-wide entry covers the advisory through its alias list too
    assert found["GHSA-test-mast"]["whitelist"]["until"] == "2024-12-31"


@pytest.mark.parametrize(("entry", "problem"), [
    ({"reason": "x"}, "needs until"),
    ({"until": "2025-01-01"}, "needs a reason"),
    ({"until": "soon", "reason": "x"}, "needs until"),
])
def test_whitelist_entries_need_expiry_and_reason(entry: dict[str, str], problem: str) -> None:
    with pytest.raises(AdvisoryError, match=problem):
        parse_whitelist({"openssl": entry}, "wl")
