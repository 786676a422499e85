"""The Streamlit app through AppTest: login on every page, each page, roles, approvals, expiry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from watchtower.dashboards.actions import audit_trail
from watchtower.dashboards.session import LAST_KEY

from watchtower.remediation.engine import Remediator
from watchtower.store import Store

from .seed import PASSWORDS, add_proposal, seed_store, write_fleet

APP = str(Path(__file__).resolve().parents[3] / "dashboards" / "app.py")
PAGES = ["Overview", "Target", "Compliance", "Drift", "Remediations", "Reports"]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    from watchtower.dashboards.session import _throttle

    _throttle.clear()  # wrong passwords of other tests must not lock anyone out here
    url = f"sqlite:///{tmp_path / 'wt.db'}"
    store = seed_store(url)
    monkeypatch.setenv("WATCHTOWER_FLEET", str(write_fleet(tmp_path, url)))
    return store


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


def login(name: str) -> AppTest:
    at = new_app()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(PASSWORDS[name])
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.sidebar.radio(key="nav").set_value(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.info] + [e.value for e in at.success]
    parts += [e.value for e in at.error] + [e.value for e in at.warning]
    return "\n".join(str(p) for p in parts)


def test_nothing_is_shown_before_login(site: Store) -> None:
    at = new_app()
    assert [t.value for t in at.title] == ["🗼 watchtower"]
    assert len(at.sidebar.radio) == 0 and not at.dataframe
    assert at.text_input(key="login_password").proto.type == 1  # TextInput.PASSWORD


def test_a_wrong_password_is_refused_and_audited(site: Store) -> None:
    at = new_app()
    at.text_input(key="login_name").input("olga")
    at.text_input(key="login_password").input("not-the-password")
    at.button[0].click().run()
    assert "Wrong user name or password." in [e.value for e in at.error]
    assert len(at.sidebar.radio) == 0
    row = audit_trail(site)[0]
    assert (row.user, row.action, row.ok) == ("olga", "login-failed", False)
    assert "not-the-password" not in str([(r.detail, r.subject) for r in audit_trail(site)])


def test_every_page_renders_for_a_signed_in_user(site: Store) -> None:
    at = login("vic")
    assert [t.value for t in at.title] == ["Fleet overview"]
    overview = at.dataframe[0].value
    assert list(overview["target"])[:2] == ["bravo.test", "alpha.test"]
    assert "🔴 fail x2" in list(overview["dns"])
    # counts named for what they count: check results, not "targets"
    assert at.metric[0].label == "Check results"
    assert any("check results on" in c.value for c in at.caption)
    for page in PAGES[1:]:
        goto(at, page)
        assert [t.value for t in at.title] == [page]
    assert audit_trail(site)[0].action == "login"


def test_target_page_shows_evidence_standards_and_history(site: Store) -> None:
    at = login("olga")
    goto(at, "Target")
    at.selectbox(key="target_select").set_value(("bravo.test", "zone")).run()
    assert not at.exception
    headers = [e.label for e in at.expander]
    assert headers[0].startswith("🔴 **dns.caa** — CAA syntax error")
    assert "Standards:" in texts(at)
    assert any("probe" in str(j.value) for j in at.json)
    assert len(at.tabs) == 4


def test_drift_page_shows_versions_generations_and_closure_diff(site: Store) -> None:
    at = login("vic")
    goto(at, "Drift")
    frames = [d.value for d in at.dataframe]
    versions = frames[0]
    assert list(versions["newest upstream"]) == ["4.3.2"]
    assert any("package" in f.columns and "pixelfed" in list(f["package"]) for f in frames)


def test_operator_approves_a_plan_and_the_trail_names_them(site: Store) -> None:
    rid = add_proposal(site)
    at = login("olga")
    goto(at, "Remediations")
    assert any("publish CAA" in m.value for m in at.markdown)
    assert any("CAA 0 issue" in c.value for c in at.code)
    at.button(key=f"rem-approve-{rid}").click().run()
    assert not at.exception
    assert any(f"#{rid} approved by olga" in s.value for s in at.success)
    remediator = Remediator.__new__(Remediator)
    remediator.store = site
    row = remediator.get(rid)
    assert row is not None and (row.state, row.approved_by) == ("approved", "olga")
    assert remediator.history(rid)[-1].actor == "olga"


def test_operator_rejects_with_a_reason(site: Store) -> None:
    rid = add_proposal(site)
    at = login("olga")
    goto(at, "Remediations")
    at.text_input(key=f"rem-reason-{rid}").input("not now")
    at.button(key=f"rem-reject-{rid}").click().run()
    remediator = Remediator.__new__(Remediator)
    remediator.store = site
    row = remediator.get(rid)
    assert row is not None and row.state == "rejected"
    assert remediator.history(rid)[-1].detail == "not now"


def test_a_viewer_cannot_approve(site: Store) -> None:
    rid = add_proposal(site)
    at = login("vic")
    goto(at, "Remediations")
    assert at.button(key=f"rem-approve-{rid}").disabled
    assert at.button(key=f"rem-reject-{rid}").disabled
    assert "viewer" in texts(at)
    remediator = Remediator.__new__(Remediator)
    remediator.store = site
    row = remediator.get(rid)
    assert row is not None and row.state == "awaiting_approval"


def test_operator_acknowledges_a_problem(site: Store) -> None:
    at = login("olga")
    goto(at, "Target")
    at.selectbox(key="target_select").set_value(("bravo.test", "zone")).run()
    at.text_input(key="ack-note-dns.caa-bravo.test").input("ticket 7")
    submit = next(b for b in at.button if b.label == "Acknowledge")
    submit.click().run()
    assert not at.exception
    assert "Acknowledged by olga" in texts(at)
    goto(at, "Overview")
    problems = at.dataframe[1].value
    acked = problems[problems["check"] == "dns.caa"]
    assert list(acked["acknowledged"]) == ["olga: ticket 7"]


def test_viewer_cannot_acknowledge(site: Store) -> None:
    at = login("vic")
    goto(at, "Target")
    assert all(b.disabled for b in at.button if b.label == "Acknowledge")


def test_idle_sessions_expire(site: Store) -> None:
    at = login("olga")
    at.session_state[LAST_KEY] = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31)
    at.run()
    assert [t.value for t in at.title] == ["🗼 watchtower"]
    assert "expired" in texts(at)
    assert audit_trail(site)[0].action == "logout"


def test_a_removed_user_is_signed_out_and_a_new_role_applies(site: Store,
                                                             tmp_path: Path) -> None:
    from watchtower.dashboards.auth import add_user, remove_user

    rid = add_proposal(site)
    at = login("olga")
    goto(at, "Remediations")
    assert not at.button(key=f"rem-approve-{rid}").disabled
    add_user(tmp_path / "users.toml", "olga", "viewer", PASSWORDS["olga"], replace=True)
    at.run()
    assert at.button(key=f"rem-approve-{rid}").disabled  # the new role, without a new login
    remove_user(tmp_path / "users.toml", "olga")
    at.run()
    assert [t.value for t in at.title] == ["🗼 watchtower"]
    assert "Your account was removed" in texts(at)
    assert (audit_trail(site)[0].action, audit_trail(site)[0].user) == ("logout", "olga")


def test_sign_out(site: Store) -> None:
    at = login("olga")
    at.sidebar.button(key="signout").click().run()
    assert [t.value for t in at.title] == ["🗼 watchtower"]


def test_reports_page(site: Store) -> None:
    at = login("olga")
    goto(at, "Reports")
    assert "No reports yet" in texts(at)


def test_oidc_offers_the_provider_sign_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    url = f"sqlite:///{tmp_path / 'wt.db'}"
    seed_store(url)
    monkeypatch.setenv("WATCHTOWER_FLEET", str(write_fleet(tmp_path, url, oidc=True)))
    at = new_app()
    labels = [b.label for b in at.button]
    assert "Sign in with your organisation's account" in labels
    assert "Sign in" in labels  # local users remain as a fallback


def test_without_a_fleet_file_the_app_says_how_to_start(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.delenv("WATCHTOWER_FLEET", raising=False)
    at = new_app()
    assert "watchtower dashboard -c FLEET" in at.error[0].value


def test_choosing_a_target_in_the_overview_opens_it(site: Store) -> None:
    at = login("vic")
    at.session_state["ov_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert [t.value for t in at.title] == ["Target"]
    assert at.selectbox(key="target_select").value == ("bravo.test", "zone")
    goto(at, "Overview")  # the old selection must not bounce the user back to the target
    assert [t.value for t in at.title] == ["Fleet overview"]


def test_text_from_probed_servers_is_inert_markdown() -> None:
    from watchtower.dashboards.views.common import plain

    assert plain("![x](https://evil.example/p.png) *b*") == (
        "\\!\\[x\\]\\(https\\://evil\\.example/p\\.png\\) \\*b\\*")
    assert plain("1 name server") == "1 name server"


def test_repeated_wrong_passwords_are_throttled_across_sessions(site: Store) -> None:
    from watchtower.dashboards.session import MAX_FAILURES, _throttle

    _throttle.clear()
    for _ in range(MAX_FAILURES):
        at = new_app()  # a new session each time: the throttle is per process, not per tab
        at.text_input(key="login_name").input("olga")
        at.text_input(key="login_password").input("guess")
        at.button[0].click().run()
    at = new_app()
    at.text_input(key="login_name").input("olga")
    at.text_input(key="login_password").input(PASSWORDS["olga"])
    at.button[0].click().run()
    assert any("Too many wrong passwords" in e.value for e in at.error)
    assert len(at.sidebar.radio) == 0
    assert audit_trail(site)[0].detail == "throttled"
    _throttle.clear()


def test_a_quorum_verdict_shows_what_each_vantage_saw(site: Store) -> None:
    """Scale-out (docs/scale-out.md): a combined result's expander lists each vantage's own
    verdict, and a vantage that sent nothing as missing, before the raw evidence."""
    from watchtower.dashboards.evidence import vantage_rows

    from watchtower.model import Result, Status, Target, TargetKind

    from .seed import NOW

    evidence = {"quorum": "2 of 3", "problems": ["nyc"], "missing": ["fra"],
                "vantages": {"ams": {"status": "ok", "summary": "HSTS max-age 1 year",
                                     "evidence": {}},
                             "nyc": {"status": "fail", "summary": "connection refused",
                                     "evidence": {}}}}
    assert [(r["vantage"], r["status"]) for r in vantage_rows(evidence)] == [
        ("ams", "ok"), ("fra", "missing"), ("nyc", "fail")]
    assert vantage_rows({"probe": "x"}) == []
    site.record([Result("web.hsts", "web", Target(TargetKind.ZONE, "bravo.test"), Status.WARN,
                        "fail seen from nyc only (1 of 3; fails at 2)", evidence, 9.0,
                        NOW - dt.timedelta(minutes=5))])
    at = login("olga")
    goto(at, "Target")
    at.selectbox(key="target_select").set_value(("bravo.test", "zone")).run()
    assert not at.exception
    assert "Seen from each vantage" in texts(at) and "2 of 3" in texts(at)
    tables = [df.value for df in at.dataframe]
    assert any(list(t.get("vantage", [])) == ["ams", "fra", "nyc"] for t in tables
               if hasattr(t, "get")), tables
