"""The dashboard's writes: role checks in the action layer, audit rows, the reports seam."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from watchtower.dashboards import actions
from watchtower.dashboards.auth import Role, User
from watchtower.dashboards.reports import NoReports, ReportsUnavailable, report_source

from watchtower.config import load_fleet
from watchtower.remediation.policy import PolicyRefused
from watchtower.store import Store

from .seed import add_proposal, seed_store, write_fleet

OLGA = User("olga", Role.OPERATOR)
VIC = User("vic", Role.VIEWER)


@pytest.fixture
def env(tmp_path: Path) -> tuple[Store, actions.Remediator]:
    url = f"sqlite:///{tmp_path / 'wt.db'}"
    store = seed_store(url)
    store.dashboard.ensure_tables()
    fleet = load_fleet(write_fleet(tmp_path, url))
    return store, actions.read_only_remediator(fleet, store)


def test_operator_approves_and_both_trails_name_them(env) -> None:  # type: ignore[no-untyped-def]
    store, rem = env
    rid = add_proposal(store)
    actions.approve(rem, OLGA, rid)
    row = rem.get(rid)
    assert row is not None and row.state == "approved" and row.approved_by == "olga"
    assert [(a.actor, a.action) for a in rem.history(rid)][-1] == ("olga", "approved")
    trail = actions.audit_trail(store)
    assert (trail[0].user, trail[0].action, trail[0].subject, trail[0].ok) == (
        "olga", "approve", f"remediation #{rid}", True)
    with pytest.raises(PolicyRefused):  # no longer awaiting approval
        actions.approve(rem, OLGA, rid)
    assert actions.audit_trail(store)[0].ok is False


def test_viewer_can_neither_approve_nor_reject_and_the_attempt_is_audited(env) -> None:  # type: ignore[no-untyped-def]
    store, rem = env
    rid = add_proposal(store)
    with pytest.raises(actions.NotAllowed):
        actions.approve(rem, VIC, rid)
    with pytest.raises(actions.NotAllowed):
        actions.reject(rem, VIC, rid, "nope")
    with pytest.raises(actions.NotAllowed):
        actions.acknowledge(store, VIC, "dns.caa", "bravo.test")
    row = rem.get(rid)
    assert row is not None and row.state == "awaiting_approval"
    refused = [(a.user, a.action, a.ok) for a in actions.audit_trail(store)]
    assert refused == [("vic", "acknowledge-refused", False), ("vic", "reject-refused", False),
                       ("vic", "approve-refused", False)]


def test_reject_records_the_reason(env) -> None:  # type: ignore[no-untyped-def]
    store, rem = env
    rid = add_proposal(store)
    actions.reject(rem, OLGA, rid, "not during the migration")
    row = rem.get(rid)
    assert row is not None and row.state == "rejected" and row.outcome == "rejected by olga"
    assert rem.history(rid)[-1].detail == "not during the migration"


def test_the_dashboard_remediator_cannot_touch_hosts(env) -> None:  # type: ignore[no-untyped-def]
    _store, rem = env
    with pytest.raises(RuntimeError, match="never"):
        rem.ctx.run_command("web1", ["true"], 1.0)


def test_acknowledge_needs_a_state(env) -> None:  # type: ignore[no-untyped-def]
    store, _rem = env
    with pytest.raises(LookupError):
        actions.acknowledge(store, OLGA, "dns.caa", "nowhere.test")
    ack = actions.acknowledge(store, OLGA, "dns.caa", "bravo.test", "ticket 42")
    assert (ack.by, ack.status, ack.note) == ("olga", "fail", "ticket 42")


def test_failed_logins_are_audited_without_the_password(env) -> None:  # type: ignore[no-untyped-def]
    store, _rem = env
    actions.record_failed_login(store, "mallory")
    row = actions.audit_trail(store)[0]
    assert (row.user, row.action, row.ok, row.detail) == ("mallory", "login-failed", False, "")


def test_reports_seam_lists_and_downloads_stored_reports(env) -> None:  # type: ignore[no-untyped-def]
    store, rem = env
    report_mod = pytest.importorskip("watchtower.report")
    reports = report_source(rem.fleet, store)
    assert reports.available() and reports.list_reports() == []
    assert reports.schedules() == []
    with pytest.raises(ReportsUnavailable, match="no \\[\\[reports\\]\\] entry"):
        reports.send_now(OLGA, "monthly")
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    report = report_mod.build_report(store, rem.fleet, None,
                                     report_mod.Period.last_days(30, now), name="adhoc", now=now)
    row = report_mod.store_report(store, report)
    entries = reports.list_reports()
    assert [(e.id, e.labels["name"], e.labels["state"]) for e in entries] == [
        (row.id, "adhoc", "draft")]
    files = {f.name.rsplit(".", 1)[1]: f for f in reports.download(row.id)}
    assert files["html"].mime == "text/html" and b"<" in files["html"].data
    assert json.loads(files["json"].data)
    assert reports.download(999) == []


def test_without_the_engine_the_page_says_so() -> None:
    none = NoReports()
    assert not none.available() and none.list_reports() == [] and none.download(1) == []
    with pytest.raises(ReportsUnavailable, match="not installed"):
        none.send_now(OLGA, "x")
