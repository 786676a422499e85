"""Data assembly for the pages, over a real SQLite store filled through Store.record."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from watchtower.dashboards import data, evidence
from watchtower.dashboards.actions import acknowledge
from watchtower.dashboards.auth import Role, User

from watchtower.compliance import score as scoring
from watchtower.config import Fleet, parse_fleet
from watchtower.model import Status, TargetKind
from watchtower.probe import registry
from watchtower.probe.runner import planned_families
from watchtower.store import Store

from .seed import NOW, result, seed_store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = seed_store(f"sqlite:///{tmp_path / 'wt.db'}")
    s.dashboard.ensure_tables()
    return s


def test_overview_is_worst_first_one_row_per_name_with_labelled_counts(store: Store) -> None:
    where = scoring.placement(parse_fleet(SEED_FLEET).targets())
    ov = data.overview(store, where=where)
    assert ov.families == ["dns", "drift", "mail", "web"]
    first = ov.rows[0]
    # bravo.test is one row: the zone and the mail domain of that name
    assert (first.target, first.kind, first.worst) == ("bravo.test", "zone, mail domain",
                                                        "fail")
    assert first.cells["dns"].at_worst == 2  # ns.count and caa both fail
    assert first.cells["dns"].text() == "🔴 fail x2"
    assert first.cells["mail"].text() == "🟣 error"
    assert first.opens == ("bravo.test", "zone")  # the worst of its targets
    worst = [r.worst for r in ov.rows]
    assert worst == sorted(worst, key=data.rank, reverse=True)
    assert ov.counts == {"fail": 4, "error": 1, "warn": 1, "ok": 3}
    assert ov.total_targets == 6
    # the service and its endpoint (social.alpha.test:8443) share a row
    assert sorted(r.target for r in ov.rows) == ["alpha.test", "bravo.test",
                                                  "social.alpha.test", "web1"]
    social = next(r for r in ov.rows if r.target == "social.alpha.test")
    assert set(social.targets) == {("social.alpha.test", "mastodon"),
                                   ("social.alpha.test:8443", "endpoint")}
    assert ov.scope_text == "9 check results on 6 targets (4 names)"
    table = ov.table()
    assert set(table[0]) >= {"target", "kind", "worst", "dns", "mail", "web", "tags"}
    assert table[0]["web"] == ""  # bravo.test has no web checks
    # without a fleet, a target's name without its port is its row
    bare = data.overview(store)
    assert {r.target for r in bare.rows} == {"alpha.test", "bravo.test", "social.alpha.test",
                                             "web1"}


def test_overview_filters(store: Store) -> None:
    groups = data.load_state_groups(store)
    gold = data.build_overview(groups, data.OverviewFilter(tags=("gold",)))
    assert {r.target for r in gold.rows} == {"alpha.test", "social.alpha.test"}
    assert gold.tags == ["gold"]
    mail = data.build_overview(groups, data.OverviewFilter(families=("mail",)))
    assert [(r.target, r.worst) for r in mail.rows] == [("bravo.test", "error")]
    assert mail.shown_families == ["mail"]
    assert mail.counts == {"fail": 0, "error": 1, "warn": 0, "ok": 1}
    assert mail.scope_text == "2 check results on 1 target (1 name)"
    only_ok = data.build_overview(groups, data.OverviewFilter(statuses=("ok",)))
    assert only_ok.rows == []  # social.alpha.test's drift warns
    search = data.build_overview(groups, data.OverviewFilter(search="WEB"))
    assert [r.target for r in search.rows] == ["web1"]


def test_changes_since_yesterday(store: Store) -> None:
    changes = data.changes_since(store, NOW - dt.timedelta(days=1))
    assert (changes.new_problems, changes.resolved, changes.first_seen) == (2, 0, 0)
    assert {r["check"] for r in changes.rows} == {"dns.ns.count", "dns.caa"}
    everything = data.changes_since(store, NOW - dt.timedelta(days=5))
    assert everything.first_seen == 9


def test_problems_and_acknowledgements_follow_the_episode(store: Store) -> None:
    rows = data.problems(store)
    assert [(r["target"], r["check"]) for r in rows] == [  # worst, then oldest first
        ("bravo.test", "dns.ns.count"), ("web1", "drift.generation"),
        ("alpha.test", "dns.ns.count"), ("bravo.test", "dns.caa"), ("bravo.test", "mail.mx")]
    assert all(r["acknowledged"] == "" for r in rows)
    olga = User("olga", Role.OPERATOR)
    acknowledge(store, olga, "dns.caa", "bravo.test", "on it")
    acked = {r["check"]: r for r in data.problems(store) if r["target"] == "bravo.test"}
    assert acked["dns.caa"]["acknowledged"] == "olga: on it"
    assert acked["dns.ns.count"]["acknowledged"] == ""
    # A new episode (status changes) is not covered by the old acknowledgement.
    store.record([result("dns.caa", "dns", TargetKind.ZONE, "bravo.test", Status.ERROR,
                         "timeout", NOW)])
    assert data.current_acks(store, [("dns.caa", "bravo.test")]) == {}


def test_target_details(store: Store) -> None:
    names = data.target_list(store)
    assert names[0][2] == "fail"
    states = data.target_states(store, "bravo.test", "zone")
    assert [s.check_id for s in states] == ["dns.caa", "dns.ns.count"]
    history = data.target_history(store, "alpha.test")
    assert [(h["check"], h["status"]) for h in history] == [
        ("dns.ns.count", "ok"), ("dns.caa", "ok"), ("dns.ns.count", "fail")]
    assert any(h["probes"] == 2 for h in history)  # the unchanged CAA streak counted twice
    flips = data.target_flips(store, "alpha.test")
    assert flips[0]["change"] == "🟢 ok → 🔴 fail"
    bodies = data.evidence_bodies(store, [s.evidence_id for s in states])
    assert {b["probe"] for b in bodies.values()} == {"CAA syntax error", "1 name server"}
    sweeps = data.recent_sweeps(store)
    assert sweeps == []  # results recorded without a sweep


SEED_FLEET = {
    "zones": [{"name": "alpha.test"}, {"name": "bravo.test"}],
    "mail_domains": [{"name": "bravo.test"}],
    "services": [{"name": "social.alpha.test", "kind": "mastodon",
                  "base_url": "https://social.alpha.test:8443/"}],
    "hosts": [{"name": "web1"}],
}


def test_scores() -> None:
    assert scoring.domain_of("social.alpha.test:8443") == "alpha.test"
    assert scoring.domain_of("mta-sts.example.co.uk") == "example.co.uk"
    assert scoring.domain_of("web1") == "web1"
    assert scoring.domain_of("a.b.example.org", ["b.example.org"]) == "b.example.org"
    assert scoring.tally(["ok", "warn", "fail", "error"]).score == 50
    assert scoring.tally(["error"]).score is None
    where = scoring.placement(parse_fleet(SEED_FLEET).targets())
    rows = scoring.section_scores([
        ("alpha.test", "zone", "dns", "ok"), ("alpha.test", "zone", "dns", "fail"),
        ("social.alpha.test:443", "endpoint", "web", "ok"),
        ("bravo.test", "zone", "dns", "error"), ("web1", "host", "drift", "fail")], where)
    by = {r.name: r for r in rows}
    assert set(by) == {"alpha.test", "bravo.test", "web1"}
    assert by["web1"].kind == "host"
    assert {g: t.score for g, t in by["alpha.test"].groups.items()} == {"dns": 50, "web": 100}
    assert by["alpha.test"].overall.percent == pytest.approx(66.67, abs=0.01)
    assert by["bravo.test"].score is None
    assert rows[-1].name == "bravo.test"  # no score sorts last, lowest score first


def test_a_service_named_apart_from_its_host_scores_under_its_domain() -> None:
    fleet = parse_fleet({"zones": [{"name": "example.org"}], "services": [
        {"name": "social", "kind": "mastodon", "base_url": "https://social.example.org/"}]})
    where = scoring.placement(fleet.targets())
    assert where.of("social", "mastodon") == ("example.org", "domain")


def test_score_trend_replays_history(store: Store) -> None:
    where = scoring.placement(parse_fleet(SEED_FLEET).targets())
    start = NOW - dt.timedelta(days=3)
    rows = data.trend_rows(store, "alpha.test", start)
    points = scoring.replay(scoring.trend_streaks(rows, "alpha.test", where), start, NOW)
    overall = [p["score"] for p in points if p["family"] == "overall"]
    # two days ago: dns ok x2, web ok, drift (mastodon version) warn; now alpha's NS count fails
    assert overall[0] == 88 and overall[-1] == 62
    assert len(overall) == 3  # 3 days ago nothing was known yet: no point
    assert {p["family"] for p in points} == {"overall", "dns", "web", "drift"}
    groups, table = scoring.score_table(scoring.section_scores(store.statuses(),
                                                               where))
    assert groups == ["mail", "dns", "web", "drift"]
    assert table[0]["domain"] == "web1"


def _one_truth(store: Store, fleet: Fleet, **report_args: Any) -> None:
    """The report and the dashboard's Overview and Compliance pages, from one store and one
    fleet, show the same numbers: scores per section and family group (with `not run` and
    `not judged` alike), counts per status, names, and the lowest section."""
    from watchtower.report import Period, build_report

    report = build_report(store, fleet, None, Period.last_days(30, NOW + dt.timedelta(hours=1)),
                          now=NOW, checks=registry.checks(), **report_args)
    where = scoring.placement(fleet.targets())
    planned = planned_families(fleet, registry.checks())
    scores = data.compliance_scores(store, where, planned, NOW.date())
    from_report = {s.name: (s.counts.score, {g: t.text() for g, t in s.groups.items()})
                   for s in report.sections if s.groups}
    from_dashboard = {s.name: (s.score, {g: t.text() for g, t in s.ordered_groups().items()})
                      for s in scores}
    assert from_report == from_dashboard
    low = scoring.lowest(scores, lambda s: s.overall)
    assert report.lowest is not None and low is not None
    assert (report.lowest.name, report.lowest.counts.score) == (low.name, low.score)
    overview = data.overview(store, where=where)
    raw = scoring.tally(str(x.status) for x in report.lines)
    assert overview.counts == {"ok": raw.ok, "warn": raw.warn, "fail": raw.fail,
                               "error": raw.error}
    assert {r.target for r in overview.rows} == {r.name for r in report.rows if r.probes.total}
    assert overview.results == len(report.lines)


def test_the_report_and_the_dashboard_show_the_same_numbers(store: Store) -> None:
    fleet = parse_fleet(SEED_FLEET)
    _one_truth(store, fleet)
    report_groups = {s.name: s.groups for s in data.compliance_scores(
        store, scoring.placement(fleet.targets()),
        planned_families(fleet, registry.checks()),
        NOW.date())}
    assert report_groups["alpha.test"]["drift"].score == 50  # the service's, under its domain
    assert report_groups["bravo.test"]["web"].text() == "not run"  # its MTA-STS endpoint
    _groups, table = scoring.score_table(scoring.section_scores(
        store.statuses(), scoring.placement(fleet.targets())))
    assert table[0]["unscored"] == ""
    row = next(r for r in scoring.score_table(data.compliance_scores(
        store, scoring.placement(fleet.targets()), [("bravo.test", "mail_domain", "web")],
        NOW.date()))[1] if r["domain"] == "bravo.test")
    assert row["unscored"] == "Mail: 1 not judged; Web not run"


def test_the_numbers_agree_with_an_adhoc_run_when_the_report_counts_it(store: Store) -> None:
    """An ad-hoc run updates the current state at once (what the operator just saw); the
    report leaves it out by default and agrees with the dashboard when asked to count it."""
    fleet = parse_fleet(SEED_FLEET)
    sweep = store.begin_sweep("manual", 1, "adhoc")
    store.record([result("mail.mx", "mail", TargetKind.MAIL_DOMAIN, "bravo.test", Status.OK,
                         "2 MX", NOW - dt.timedelta(minutes=5))], sweep)
    assert store.dashboard.adhoc_states() == 1
    _one_truth(store, fleet, include_adhoc=True)
    from watchtower.report import Period, build_report

    default = build_report(store, fleet, None, Period.last_days(30, NOW + dt.timedelta(hours=1)),
                           now=NOW)
    mx = next(x for x in default.lines if x.check == "mail.mx")
    assert str(mx.status) == "error" and default.coverage.adhoc_left_out == 1


def test_expiry_and_drift_evidence(store: Store) -> None:
    horizon = evidence.expiry_horizon(store, now=NOW)
    assert horizon == [{"target": "social.alpha.test:8443", "check": "web.tls.certificate",
                        "status": "ok", "expires": dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
                        "days_left": 9.5}]
    drift = {d["check"]: d for d in evidence.drift_states(store)}
    assert set(drift) == {"drift.version", "drift.generation"}
    v = evidence.version_facts(drift["drift.version"]["evidence"])
    assert (v["declared"], v["newest upstream"], v["releases behind"]) == ("4.3.0", "4.3.2", 2)
    assert v["behind since (days)"] == 60
    g = evidence.generation_facts(drift["drift.generation"]["evidence"])
    assert g["current generation"] == 1
    assert evidence.closure_diff_rows(g["closure_diff"]) == [
        {"change": "added", "package": "pixelfed", "from": "", "to": "0.12.4"},
        {"change": "changed", "package": "mastodon", "from": "4.3.1", "to": "4.3.2"}]
