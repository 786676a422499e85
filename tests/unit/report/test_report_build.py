"""Report figures from a hand-made history: scope, scores, availability apart from compliance,
the span the data covers, ad-hoc runs, changes, escaping."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from io import BytesIO
from pathlib import Path

import pytest

from watchtower.compliance.score import Tally as Counts
from watchtower.config import Fleet, parse_fleet
from watchtower.errors import ConfigError
from watchtower.model import Result, Status, Target, TargetKind
from watchtower.probe import availability, registry
from watchtower.probe.runner import planned_families
from watchtower.report import Period, build_report, render_html, render_pdf, render_text
from watchtower.report.figures import Within, probes_within, within
from watchtower.report.hints import HINTS, hint_for
from watchtower.report.pdf import latin1
from watchtower.report.render import STATUS_COLOURS, headline_colour
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


def _record(store: Store, results: list[Result], kind: str | None = None) -> None:
    """Store results as a sweep does: stamped with their availability answer, in a sweep of
    `kind` (none: outside any sweep, as scheduled)."""
    availability.stamp(results)
    sweep = store.begin_sweep("manual", len(results), kind) if kind else None
    store.record(results, sweep)


def _sweep(at: dt.datetime, health: str = "ok") -> list[Result]:
    return [
        _result("dns.ns.count", "dns", TargetKind.ZONE, "a.test", "ok", at),
        _result("dns.ns.count", "dns", TargetKind.ZONE, "b.test", "fail", at),
        _result("fedi.health", "fedi", TargetKind.MASTODON, "social.a.test", health, at,
                "<b>down</b> & out" if health == "fail" else ""),
        _result("web.hsts", "web", TargetKind.ENDPOINT, "social.a.test", "warn", at),
    ]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'wt.db'}")
    hour = dt.timedelta(hours=1)
    for i in range(10):  # 10 hourly sweeps: social fails in sweeps 3 and 4
        _record(s, _sweep(T0 + i * hour, "fail" if i in (3, 4) else "ok"))
    return s


def _fleet(min_span_hours: float | None = None) -> Fleet:
    doc = tomllib.loads(FLEET)
    if min_span_hours is not None:
        doc["reporting"] = {"min_span_hours": min_span_hours}
    return parse_fleet(doc)


def test_availability_is_apart_from_compliance_and_named_for_what_it_is(store: Store) -> None:
    report = build_report(store, _fleet(6), "acme", Period(T0, T0 + dt.timedelta(days=1)))
    assert [s.name for s in report.sections] == ["a.test"]
    assert {x.target for x in report.lines} == {"a.test", "social.a.test"}
    rows = {r.name: r for r in report.rows}
    assert set(rows) == {"a.test", "social.a.test"}
    social = rows["social.a.test"]
    # one host, seen as the Mastodon service and its endpoint, with their families
    assert sorted(social.targets) == [("social.a.test", "endpoint"), ("social.a.test", "mastodon")]
    assert {"web", "federation"} <= set(social.families)
    # availability: fedi.health answered 8 of 10; the missing HSTS header is no downtime
    (health,) = social.signals
    assert (health.check, health.answered, health.unanswered) == ("fedi.health", 8, 2)
    assert social.availability(report.coverage) == 80.0
    # compliance over the period: 8 ok + 2 fail (health) and 10 warn (hsts) -> 13 of 20
    assert social.probes.total == 20 and social.compliance_percent == 65.0
    assert rows["a.test"].signals == [] and rows["a.test"].compliance_percent == 100.0
    # latest verdicts: ns ok, health ok, hsts warn -> (1 + 1 + 0.5) / 3
    assert report.score == 83 and report.groups["web"].score == 50
    assert report.coverage.span == dt.timedelta(hours=9) and report.coverage.enough()
    # baseline at period start (history): nothing known before -> warnings are new.
    assert [c.check for c in report.changes.new_warnings] == ["web.hsts"]
    body = report.to_json()
    assert body["schema_version"] == 3 and json.dumps(body)
    assert "uptime" not in body
    (row,) = [r for r in body["rows"] if r["name"] == "social.a.test"]
    assert row["availability_percent"] == 80.0 and row["compliance_percent"] == 65.0
    assert row["signals"][0]["label"] == "health"
    assert body["coverage"]["first_probe"] == T0.isoformat()
    assert body["scope"]["check_results"] == 3 and body["scope"]["targets"] == 3


def test_no_availability_over_less_than_the_minimum_span(store: Store) -> None:
    period = Period(T0, T0 + dt.timedelta(days=30))
    report = build_report(store, _fleet(), "acme", period)  # default: 24 hours
    assert not report.coverage.enough()
    assert report.coverage.text() == "not enough data: 9.0 hours of a 30-day period"
    social = next(r for r in report.rows if r.name == "social.a.test")
    assert social.availability(report.coverage) is None
    assert social.availability_text(report.coverage) == "health: not enough data"
    for text in (render_text(report), render_html(report)):
        assert "not enough data: 9.0 hours of a 30-day period" in text
        assert "uptime" not in text.lower()
    short = build_report(store, _fleet(), "acme", Period(T0, T0 + dt.timedelta(minutes=5)))
    assert short.coverage.text() == "not enough data: 0 minutes of a 5-minute period"
    empty = build_report(store, _fleet(), "acme", Period(T0 - dt.timedelta(days=9), T0))
    assert empty.coverage.text() == "not enough data: no scheduled probe in the 9-day period"


def test_the_headline_colour_follows_the_worst_domain(store: Store) -> None:
    report = build_report(store, _fleet(), None, Period(T0, T0 + dt.timedelta(days=1)))
    assert {s.name: s.counts.score for s in report.sections} == {"a.test": 83, "b.test": 0}
    assert report.score == 62  # the mean alone would read amber
    assert report.lowest is not None and report.lowest.name == "b.test"
    assert headline_colour(report) == STATUS_COLOURS["fail"]
    assert report.to_json()["lowest"] == {"section": "b.test", "score": 0}
    assert "lowest: b.test 0%" in render_text(report)
    assert report.scope_text == "4 check results on 4 targets (3 names) in 2 domains"


def test_a_family_without_results_is_not_run_and_one_only_errored_is_not_judged(
        store: Store) -> None:
    _record(store, [_result("drift.version", "drift", TargetKind.MASTODON, "social.a.test",
                            "error", T0 + dt.timedelta(hours=9, minutes=1))])
    doc = tomllib.loads(FLEET)
    doc["mail_domains"] = [{"name": "a.test", "customer": "acme"}]  # never probed
    fleet = parse_fleet(doc)
    planned = planned_families(fleet, registry.checks(), fleet.targets())
    assert ("a.test", "mail_domain", "mail") in planned
    report = build_report(store, fleet, "acme", Period(T0, T0 + dt.timedelta(days=1)))
    groups = report.sections[0].groups
    assert groups["drift"].state == "not judged" and groups["drift"].text() == \
        "not judged (1 error)"
    assert groups["mail"].state == "not run" and groups["mail"].score is None
    assert groups["mail"].text() == "not run"
    row = next(r for r in report.rows if r.name == "a.test")
    assert row.kinds_text == "zone, mail domain" and "mail" in row.families
    families = {f["family"]: f for f in report.to_json()["families"]}
    assert families["drift"]["state"] == "not judged" and families["drift"]["score"] is None
    assert families["mail"]["state"] == "not run"
    per_family = render_text(report).split("Score per family")[1].split("Changes")[0]
    assert "not judged (1 error)" in per_family and "not run" in per_family
    html = render_html(report)
    assert "not judged (1 error)" in html and "not run" in html


def test_adhoc_runs_are_left_out_unless_asked(store: Store) -> None:
    later = T0 + dt.timedelta(hours=9, minutes=30)
    _record(store, [_result("fedi.health", "fedi", TargetKind.MASTODON, "social.a.test",
                            "fail", later)], kind="adhoc")
    period = Period(T0, T0 + dt.timedelta(days=1))
    report = build_report(store, _fleet(6), "acme", period)
    health = next(x for x in report.lines if x.check == "fedi.health")
    assert health.status is Status.OK  # the scheduled verdict
    assert report.coverage.adhoc_left_out == 1 and report.coverage.last_probe == \
        T0 + dt.timedelta(hours=9)
    social = next(r for r in report.rows if r.name == "social.a.test")
    assert social.signals[0].unanswered == 2
    assert "1 probe of ad-hoc runs left out" in render_text(report)
    asked = build_report(store, _fleet(6), "acme", period, include_adhoc=True)
    assert next(x for x in asked.lines if x.check == "fedi.health").status is Status.FAIL
    assert asked.coverage.include_adhoc and asked.coverage.adhoc_left_out == 0
    assert "Probes, ad-hoc runs included: data from" in render_text(asked)
    assert next(r for r in asked.rows if r.name == "social.a.test").signals[0].unanswered == 3
    # the state shows what the ad-hoc run found: the present, as the operator just saw it
    state = {(s.check_id, s.target): s for s in store.current()}
    assert state[("fedi.health", "social.a.test")].status == "fail"
    assert state[("fedi.health", "social.a.test")].adhoc


def test_a_scheduled_verdict_split_by_an_adhoc_run_keeps_its_first_probe(store: Store) -> None:
    hour = dt.timedelta(hours=1)
    _record(store, _sweep(T0 + 10 * hour), kind="adhoc")  # same verdicts, ad hoc
    _record(store, _sweep(T0 + 11 * hour))  # scheduled again: a new streak
    report = build_report(store, _fleet(), "acme", Period(T0, T0 + dt.timedelta(days=1)))
    ns = next(x for x in report.lines if x.check == "dns.ns.count")
    assert ns.observed_since == T0 and ns.last_seen == T0 + 11 * hour
    health = next(x for x in report.lines if x.check == "fedi.health")
    assert health.observed_since == T0 + 5 * hour  # since it recovered


def test_period_cuts_streaks_at_its_boundaries(store: Store) -> None:
    period = Period(T0 + dt.timedelta(hours=2), T0 + dt.timedelta(hours=5))  # sweeps 2, 3, 4
    report = build_report(store, _fleet(), "acme", period)
    health = next(x for x in report.lines if x.check == "fedi.health")
    assert health.status is Status.FAIL  # the latest verdict inside the period
    rows = {r.name: r for r in report.rows}
    assert rows["a.test"].probes.total == 3
    assert rows["social.a.test"].probes.fail == 2 and rows["social.a.test"].probes.ok == 1
    assert report.coverage.first_probe == T0 + dt.timedelta(hours=2)
    assert report.coverage.last_probe == T0 + dt.timedelta(hours=4)
    assert [c.check for c in report.changes.new_failures] == ["fedi.health"]


def test_within_counts_evenly_spaced_probes() -> None:
    row = ResultRow(check_id="c", target="t", target_kind="zone", family="dns", status="ok",
                    summary="", first_at=T0, last_at=T0 + dt.timedelta(hours=9), count=10)
    hour = dt.timedelta(hours=1)
    assert probes_within(row, Period(T0, T0 + 10 * hour)) == 10
    assert probes_within(row, Period(T0 + 2 * hour, T0 + 5 * hour)) == 3
    assert within(row, Period(T0 + 2 * hour, T0 + 5 * hour)) == Within(
        3, T0 + 2 * hour, T0 + 4 * hour)
    assert probes_within(row, Period(T0 - 5 * hour, T0 + hour)) == 1
    assert probes_within(row, Period(T0 + 9 * hour, T0 + 20 * hour)) == 1
    assert probes_within(row, Period(T0 + 10 * hour, T0 + 20 * hour)) == 0


def test_summaries_are_escaped_in_html_and_pdf_draws_any_text(store: Store) -> None:
    report = build_report(store, _fleet(), "acme", Period(T0, T0 + dt.timedelta(hours=5)))
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
