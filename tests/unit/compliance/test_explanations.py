"""Comply or explain: recording, validity by day (back to failing the day after expiry),
and what an explanation covers in the framework states, the checks and the score."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from watchtower.compliance import explanations as ex
from watchtower.compliance.explanations import Explanation, ExplanationError
from watchtower.compliance.frameworks import InStatus
from watchtower.probe import registry
from watchtower.store import ExplanationRow, Store

NOW = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
UNTIL = dt.date(2027, 1, 31)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'wt.db'}")


def _record(store: Store, **kw: object) -> ExplanationRow:
    args: dict[str, object] = {"domain": "a.test", "criterion": "web_https_tls_version",
                               "who": "olga", "why": "legacy payment terminals need TLS 1.1",
                               "until": UNTIL}
    args.update(kw)
    return ex.record(store, **args, now=NOW,  # type: ignore[arg-type]
                     check_ids=registry.checks())


def test_valid_through_until_and_counts_again_the_day_after() -> None:
    e = Explanation("a.test", "web_https_tls_version", "olga", "why not", UNTIL)
    assert e.valid_on(UNTIL)
    assert not e.valid_on(UNTIL + dt.timedelta(days=1))
    assert ex.active([e], UNTIL + dt.timedelta(days=1)) == {}


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("domain", "nodot", "domain"), ("criterion", "web_https_nonsense", "criterion"),
    ("who", " ", "who"), ("why", "because", "why"),
    ("until", dt.date(2026, 12, 5), "already past"), ("until", dt.date(2031, 1, 1), "at most"),
])
def test_bad_explanations_are_refused_with_the_field(store: Store, field: str, value: object,
                                                    fragment: str) -> None:
    with pytest.raises(ExplanationError, match=fragment):
        _record(store, **{field: value})
    assert store.explanations.rows(include_revoked=True) == []


def test_recorded_and_revoked_rows_stay_for_audit(store: Store) -> None:
    row = _record(store, domain="A.Test.")
    assert row.domain == "a.test" and row.created_at is not None
    assert [e.criterion for e in ex.in_force(store)] == [
        "web_https_tls_version"]
    ex.revoke(store, row.id or 0, "piet", "terminals replaced", now=NOW)
    assert ex.in_force(store) == []
    (kept,) = store.explanations.rows(include_revoked=True)
    assert (kept.revoked_by, kept.revoke_reason) == ("piet", "terminals replaced")
    with pytest.raises(ExplanationError, match="revoked"):
        ex.revoke(store, row.id or 0, "piet", "again", now=NOW)


def _evidence(*shown: tuple[str, str]) -> dict[str, object]:
    return {"criteria": [{"criterion": t, "internetnl": {t: s}} for t, s in shown]}


def test_a_check_is_excused_only_when_every_failing_test_is_explained() -> None:
    e = Explanation("a.test", "web_https_tls_version", "olga", "terminals", UNTIL)
    one = {"web_https_tls_version": e}
    evidence = _evidence(("web_https_tls_version", "failed"), ("web_https_tls_0rtt", "passed"),
                         ("web_https_tls_ocsp", "info"))
    assert ex.check_explanation("web.tls.ncsc", "fail", evidence, one) is e
    two = _evidence(("web_https_tls_version", "failed"), ("web_https_tls_ciphers", "failed"))
    assert ex.check_explanation("web.tls.ncsc", "fail", two, one) is None
    assert ex.check_explanation("web.tls.ncsc", "ok", evidence, one) is None
    hsts = {"web_https_http_hsts": e}  # a check that is one internet.nl test
    assert ex.check_explanation("web.hsts", "warn", {}, hsts) is e


def test_a_test_state_is_explained_only_when_it_would_count_against() -> None:
    e = Explanation("a.test", "web.tls.ncsc", "olga", "whole check", UNTIL)
    by = {"web.tls.ncsc": e}
    assert ex.test_explanation("web_https_tls_version", "web.tls.ncsc", InStatus.FAILED, by) is e
    assert ex.test_explanation("web_https_tls_version", "web.tls.ncsc", InStatus.PASSED,
                               by) is None


def _report(store: Store, now: dt.datetime):  # type: ignore[no-untyped-def]
    from watchtower.config import parse_fleet
    from watchtower.model import Result, Status, Target, TargetKind
    from watchtower.report import Period, build_report

    fleet = parse_fleet({"zones": [{"name": "a.test"}],
                         "endpoints": [{"url": "https://www.a.test/"}]})
    at = now - dt.timedelta(hours=1)
    store.record([
        Result("web.hsts", "web", Target(TargetKind.ENDPOINT, "www.a.test"), Status.WARN,
               "no Strict-Transport-Security header", {"https": {"status": 200}}, 3.0, at),
        Result("dns.ns.count", "dns", Target(TargetKind.ZONE, "a.test"), Status.OK, "2 NS", {},
               3.0, at)])
    return build_report(store, fleet, None, Period.last_days(7, now), now=now)


def test_an_explained_warning_is_shown_and_not_scored_until_the_day_after(store: Store
                                                                         ) -> None:
    from watchtower.report import render_text

    _record(store, criterion="web_https_http_hsts", why="HSTS breaks the legacy kiosk app")
    report = _report(store, NOW)
    (section,) = report.sections
    (hsts,) = [x for x in section.lines if x.check == "web.hsts"]
    assert hsts.explanation is not None and hsts.explanation.who == "olga"
    assert section.counts.explained == 1 and section.counts.warn == 0
    assert section.counts.score == 100  # only dns.ns.count is scored
    state = {s.test.id: s for s in section.frameworks["internet.nl web"]}["web_https_http_hsts"]
    assert state.status is InStatus.EXPLAINED and "legacy kiosk" in state.detail
    assert "[EXPLAINED] " in render_text(report) and "legacy kiosk" in render_text(report)
    later = _report(store, dt.datetime.combine(UNTIL + dt.timedelta(days=1), dt.time(8),
                                               tzinfo=dt.UTC))
    (section,) = later.sections
    assert section.counts.explained == 0 and section.counts.warn == 1
    state = {s.test.id: s for s in section.frameworks["internet.nl web"]}["web_https_http_hsts"]
    assert state.status is InStatus.WARNING


def test_cli_add_list_revoke(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from watchtower.cli import main

    fleet = tmp_path / "fleet.toml"
    fleet.write_text(f'[store]\ndatabase = "sqlite:///{tmp_path / "wt.db"}"\n'
                     '[[zones]]\nname = "a.test"\n')
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    base = ["explain", "add", "-c", str(fleet), "--domain", "a.test"]
    assert main([*base, "--criterion", "mail_auth_dmarc_policy", "--why",
                 "p=none while the new mailer is measured", "--until", until,
                 "--by", "olga"]) == 0
    assert "explained by olga" in capsys.readouterr().out
    assert main([*base, "--criterion", "nonsense", "--why", "x" * 20, "--until", until]) == 2
    assert "criterion" in capsys.readouterr().err
    assert main(["explain", "revoke", "1", "-c", str(fleet), "--by", "piet",
                 "--why", "done"]) == 0
    capsys.readouterr()
    assert main(["explain", "list", "-c", str(fleet), "--all", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["explanations"]
    assert (row["who"], row["revoked_by"], row["revoke_reason"]) == ("olga", "piet", "done")


def test_dashboard_explains_as_operators_only_and_audits(store: Store) -> None:
    from watchtower.dashboards import actions
    from watchtower.dashboards.auth import Role, User

    olga, vic = User("olga", Role.OPERATOR), User("vic", Role.VIEWER)
    with pytest.raises(actions.NotAllowed):
        actions.explain(store, vic, "a.test", "web_https_tls_version",
                        "terminals need it", UNTIL)
    row = actions.explain(store, olga, "a.test", "web_https_tls_version",
                          "terminals need TLS 1.1", UNTIL)
    assert row.who == "olga"
    actions.revoke_explanation(store, olga, row.id or 0, "terminals replaced")
    trail = [(a.user, a.action, a.ok) for a in actions.audit_trail(store)]
    assert ("vic", "explain-refused", False) in trail
    assert ("olga", "explain", True) in trail and ("olga", "revoke-explanation", True) in trail


def test_dashboard_score_leaves_out_what_is_explained(store: Store) -> None:
    from watchtower.compliance.score import placement, section_scores
    from watchtower.config import parse_fleet

    _report(store, NOW)  # records web.hsts warn on www.a.test and dns.ns.count ok on a.test
    where = placement(parse_fleet({"zones": [{"name": "a.test"}],
                                   "endpoints": [{"url": "https://www.a.test/"}]}).targets())

    def score(day: dt.date):  # type: ignore[no-untyped-def]
        (section,) = section_scores(ex.scored_statuses(store, where, day), where)
        return section

    assert score(NOW.date()).score == 75  # ok 100 %, warn 50 %
    _record(store, criterion="web_https_http_hsts", why="HSTS breaks the legacy kiosk app")
    during = score(NOW.date())
    assert during.score == 100 and during.overall.explained == 1
    assert score(UNTIL + dt.timedelta(days=1)).score == 75
