"""Report figures from a hand-made history: scope, scores, exact uptime, changes, escaping."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from io import BytesIO
from pathlib import Path

import pytest

from watchtower.compliance.score import Tally as Counts
from watchtower.config import parse_fleet
from watchtower.errors import ConfigError
from watchtower.model import Cause, Result, Status, Target, TargetKind
from watchtower.report import Period, build_report, render_html, render_pdf, render_text
from watchtower.report.build import probes_within
from watchtower.report.hints import HINTS, hint_for
from watchtower.report.pdf import latin1
from watchtower.store import ResultRow, Store

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
FLEET = """
[[zones]]
name = "a.test"
customer = "acme"
[[zones]]
name = "b.test"
customer = "globex"
[[services]]
name = "social.a.test"
kind = "mastodon"
base_url = "https://social.a.test/"
customer = "acme"
"""


def _result(check: str, family: str, kind: TargetKind, target: str, status: str,
            at: dt.datetime, summary: str = "") -> Result:
    return Result(check=check, family=family, target=Target(kind, target), status=Status(status),
                  summary=summary or f"{check} {status}", evidence={"seen": status},
                  duration_ms=5.0, at=at)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'wt.db'}")
    hour = dt.timedelta(hours=1)
    for i in range(10):  # 10 hourly sweeps: social fails in sweeps 3 and 4
        at = T0 + i * hour
        s.record([
            _result("dns.ns.count", "dns", TargetKind.ZONE, "a.test", "ok", at),
            _result("dns.ns.count", "dns", TargetKind.ZONE, "b.test", "fail", at),
            _result("fedi.health", "fedi", TargetKind.MASTODON, "social.a.test",
                    "fail" if i in (3, 4) else "ok", at, "<b>down</b> & out" if i in (3, 4)
                    else ""),
            _result("web.hsts", "web", TargetKind.ENDPOINT, "social.a.test", "warn", at),
        ])
    return s


def test_customer_scope_scores_and_exact_uptime(store: Store) -> None:
    fleet = parse_fleet(tomllib.loads(FLEET))
    report = build_report(store, fleet, "acme", Period(T0, T0 + dt.timedelta(days=1)))
    assert [s.name for s in report.sections] == ["a.test"]
    assert {x.target for x in report.lines} == {"a.test", "social.a.test"}
    up = {u.target: u for u in report.uptime}
    # social.a.test: fedi.health 8 ok + 2 fail, web.hsts 10 warn -> 8 ok of 20 probes.
    assert up["social.a.test"].probes == 20 and up["social.a.test"].counts.ok == 8
    assert up["social.a.test"].percent == 40.0
    assert up["a.test"].percent == 100.0
    # latest verdicts: ns ok, health ok, hsts warn -> (1 + 1 + 0.5) / 3
    assert report.score == 83
    assert report.groups["web"].score == 50
    # baseline at period start (history): nothing known before -> warnings are new.
    assert [c.check for c in report.changes.new_warnings] == ["web.hsts"]
    body = report.to_json()
    assert body["schema_version"] == 2 and json.dumps(body)


def test_period_cuts_streaks_at_its_boundaries(store: Store) -> None:
    fleet = parse_fleet(tomllib.loads(FLEET))
    period = Period(T0 + dt.timedelta(hours=2), T0 + dt.timedelta(hours=5))  # sweeps 2, 3, 4
    report = build_report(store, fleet, "acme", period)
    health = next(x for x in report.lines if x.check == "fedi.health")
    assert health.status is Status.FAIL  # the latest verdict inside the period
    up = {u.target: u for u in report.uptime}
    assert up["a.test"].probes == 3
    assert up["social.a.test"].counts.fail == 2 and up["social.a.test"].counts.ok == 1
    assert [c.check for c in report.changes.new_failures] == ["fedi.health"]


def test_probes_within_counts_evenly_spaced_probes() -> None:
    row = ResultRow(check_id="c", target="t", target_kind="zone", family="dns", status="ok",
                    summary="", first_at=T0, last_at=T0 + dt.timedelta(hours=9), count=10)
    hour = dt.timedelta(hours=1)
    assert probes_within(row, Period(T0, T0 + 10 * hour)) == 10
    assert probes_within(row, Period(T0 + 2 * hour, T0 + 5 * hour)) == 3
    assert probes_within(row, Period(T0 - 5 * hour, T0 + hour)) == 1
    assert probes_within(row, Period(T0 + 9 * hour, T0 + 20 * hour)) == 1
    assert probes_within(row, Period(T0 + 10 * hour, T0 + 20 * hour)) == 0


def test_summaries_are_escaped_in_html_and_pdf_draws_any_text(store: Store) -> None:
    fleet = parse_fleet(tomllib.loads(FLEET))
    report = build_report(store, fleet, "acme", Period(T0, T0 + dt.timedelta(hours=5)))
    html = render_html(report)
    assert "&lt;b&gt;down&lt;/b&gt; &amp; out" in html and "<b>down</b>" not in html
    assert "<script" not in html and "<style" not in html
    assert "<b>down</b> & out" in render_text(report)
    from pypdf import PdfReader

    reader = PdfReader(BytesIO(render_pdf(report)))
    assert "Compliance report for acme" in reader.pages[0].extract_text()
    assert latin1("caf\u00e9 \u2192 \u2026 \u4e2d") == "caf\u00e9 -> ... ?"


def test_counts_score_like_internet_nl() -> None:
    assert Counts(ok=3, warn=1, fail=0, error=5).score == 88  # errors are not scored
    assert Counts(error=2).score is None


def test_every_catalog_check_has_a_hint() -> None:
    from watchtower.probe import registry

    ids = set(registry.checks())
    assert ids <= set(HINTS), sorted(ids - set(HINTS))
    assert hint_for("x.unknown") and hint_for("dns.caa", "own") == "own"


def test_report_schedules_are_validated() -> None:
    text = """
[[reports]]
name = "m"
cron = "not a cron"
recipients = ["a@b.example"]
channel = "nope"
"""
    with pytest.raises(ConfigError) as exc:
        parse_fleet(tomllib.loads(text))
    text_ = "\n".join(exc.value.problems)
    assert "reports[0].channel" in text_ and "reports[0].cron" in text_


def test_a_caused_error_is_listed_under_its_root_and_not_scored(tmp_path: Path) -> None:
    """One root cause, one finding: the report lists what the root leaves unjudged beneath it
    (watchtower/probe/dependencies.py), and the score counts the root's fail only."""
    s = Store(f"sqlite:///{tmp_path / 'wt.db'}")
    at = T0 + dt.timedelta(hours=1)
    root = _result("web.tls.certificate", "web", TargetKind.ENDPOINT, "social.a.test", "fail",
                   at, "certificate expired")
    caused = _result("fedi.health", "fedi", TargetKind.MASTODON, "social.a.test", "error", at,
                     "not judged: web.tls.certificate on social.a.test failed")
    caused.cause = Cause("web.tls.certificate", "social.a.test")
    s.record([root, caused, _result("dns.ns.count", "dns", TargetKind.ZONE, "a.test", "ok", at)])
    report = build_report(s, parse_fleet(tomllib.loads(FLEET)), "acme",
                          Period(T0, T0 + dt.timedelta(days=1)))
    (section,) = report.sections
    assert [x.check for x in section.problems] == ["web.tls.certificate"]
    (line,) = section.affected(section.problems[0])
    assert (line.check, line.cause) == ("fedi.health", "web.tls.certificate on social.a.test")
    assert (section.counts.fail, section.counts.error, section.counts.score) == (1, 1, 50)
    assert "Not judged while this fails (1): fedi.health on social.a.test" in render_text(report)
    assert "fedi.health on social.a.test" in render_html(report)
    s.close()
