"""What the Target and Drift pages show for people: plain text, blanks, fix hints, one target."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from watchtower.dashboards import data, evidence
from watchtower.dashboards.hints import PROBE_ERROR, fix_hint
from watchtower.dashboards.views.common import plain

from watchtower.report.hints import HINTS
from watchtower.store import Store

from .seed import seed_store


def test_addresses_are_escaped_before_an_autolink_could_keep_the_backslashes() -> None:
    """GFM's autolink literal starts at `https://`, `www.` or `@` and showed every escape
    after it (`video\\.bravo\\.test`); with `:` and `@` escaped it never starts there."""
    for text in ("TLS failure on https://video.bravo.test/api", "www.video.bravo.test",
                 "mail to postmaster@bravo.test"):
        out = plain(text)
        assert "s://" not in out and "www." not in out and "r@" not in out
        assert out.replace("\\", "") == text


def test_unknowns_are_blank_and_empty_columns_left_out() -> None:
    rows = [{"service": "a", "declared": None, "running": "1.0", "in closure": None},
            {"service": "b", "declared": None, "running": None, "in closure": None}]
    assert evidence.blanks(rows) == [{"service": "a", "running": "1.0"},
                                     {"service": "b", "running": ""}]
    assert evidence.blanks(rows, keep=("declared",))[0]["declared"] == ""


def test_a_service_never_reached_is_not_zero_releases_behind() -> None:
    never = evidence.version_facts({"error": "TLS failure"})
    assert never["releases behind"] is None and never["behind since (days)"] is None
    current = evidence.version_facts({"running": "4.3.2", "upstream": {
        "newest": "4.3.2", "newest_date": "2026-10-03", "newer": []}})
    assert current["releases behind"] == 0


def test_fix_hints_come_from_the_report_and_follow_its_verdicts() -> None:
    assert fix_hint("dns.caa", "fail") == HINTS["dns.caa"] == fix_hint("dns.caa", "warn")
    assert fix_hint("dns.caa", "ok") == ""
    assert fix_hint("dns.caa", "error") == PROBE_ERROR


def test_a_target_history_is_its_own_not_its_namesakes(tmp_path: Path) -> None:
    store: Store = seed_store(f"sqlite:///{tmp_path / 'wt.db'}")
    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    both = {h["check"] for h in data.target_history(store, "bravo.test", since)}
    zone = {h["check"] for h in data.target_history(store, "bravo.test", since, "zone")}
    assert {"mail.mx", "dns.caa"} <= both
    assert zone == {"dns.ns.count", "dns.caa"}


def test_open_problems_carry_the_fix_hint(tmp_path: Path) -> None:
    store: Store = seed_store(f"sqlite:///{tmp_path / 'wt.db'}")
    store.dashboard.ensure_tables()
    rows = {(r["target"], r["check"]): r for r in data.problems(store)}
    assert rows[("bravo.test", "dns.caa")]["how to fix"] == HINTS["dns.caa"]
    assert rows[("bravo.test", "mail.mx")]["how to fix"] == PROBE_ERROR


def test_family_columns_share_the_width_a_laptop_screen_leaves() -> None:
    from watchtower.dashboards import layout

    fixed = layout.SELECT_PX + 400
    share = layout.column_px(8, fixed)
    assert fixed + 8 * share <= layout.MAIN_PX
    assert layout.column_px(40, fixed) == 56  # too many to fit: still readable, then scroll
    assert layout.column_px(2, fixed) == 96  # few: no stretched columns


def test_text_columns_take_what_the_short_ones_leave_whatever_their_content() -> None:
    """A table's widths come from its columns, never from its data: a 300-character summary
    is cut at its column's edge (and read in full on selection), not pushed off-screen."""
    from watchtower.dashboards import layout
    from watchtower.dashboards.views.common import CHANGE_PX, fit_columns

    px = layout.share_px({"status": 76, "target": 150}, {"summary": 3, "fix": 1},
                         extra_px=layout.SELECT_PX)
    assert sum(px.values()) + layout.SELECT_PX <= layout.MAIN_PX
    assert abs(px["summary"] - 3 * px["fix"]) <= 3  # by weight, to the pixel
    assert layout.share_px({"a": layout.MAIN_PX}, {"b": 1})["b"] == 80  # never unreadable

    at = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
    rows = [{"at": at, "check": "dns.caa", "change": "ok → fail", "reason": "x" * 300,
             "n": 3}]
    config = fit_columns(rows, {**CHANGE_PX, "n": 40}, {"reason": 1})
    assert set(config) == {"at", "check", "change", "reason", "n"}  # no target: not in rows
    assert sum(c["width"] for c in config.values()) <= layout.MAIN_PX
    assert config["at"]["type_config"]["type"] == "datetime"
    assert config["n"]["type_config"]["type"] == "number"
    assert config["reason"]["type_config"]["type"] == "text"


def test_a_probe_error_is_not_called_a_fix() -> None:
    from watchtower.dashboards.hints import fix_line

    assert fix_line("dns.caa", "fail") == f"How to fix: {HINTS['dns.caa']}"
    assert fix_line("dns.caa", "error") == PROBE_ERROR
    assert fix_line("dns.caa", "ok") == ""
