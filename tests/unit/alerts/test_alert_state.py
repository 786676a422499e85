"""Alert state: thresholds, flips, reminders, resolve notices, maintenance, restarts."""

from __future__ import annotations

from pathlib import Path

from tests.unit.alerts.helpers import BRAVO_WINDOW, T0, fleet, minutes, result, store
from watchtower.alerting.processor import AlertProcessor
from watchtower.model import Result
from watchtower.store import Store

CHANNELS = """
[alerting]
reminder_interval = 3600
[[notifications.email]]
name = "ops-mail"
host = "127.0.0.1"
sender = "wt@example.org"
to = ["ops@example.org"]
[[notifications.apprise]]
name = "ops-matrix"
url = { "$env" = "WT_TEST_APPRISE_URL" }
only = ["fedi", "dns.*"]
"""


def feed(st: Store, proc: AlertProcessor, *results: Result) -> list[str]:
    """Store then process each result as the engine does; returns the flips as 'old>new'."""
    out = []
    for r in results:
        st.record([r])
        out += [f"{f.old}>{f.new}" for f in proc.process([r], now=r.at)]
    return out


def test_fires_after_three_problems_and_resolves_after_two_goods(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WT_TEST_APPRISE_URL", "json://127.0.0.1:1/")
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet(CHANNELS))
    flips = feed(s, proc, result("fail", T0), result("error", T0 + minutes(1)))
    assert flips == [] and s.alerts.outbox() == []
    flips = feed(s, proc, result("fail", T0 + minutes(2)))
    assert flips == ["pending>firing"]
    rows = s.alerts.outbox()
    assert {(r.channel, r.kind) for r in rows} == {("ops-mail", "firing"), ("ops-matrix", "firing")}
    assert "FIRING: dns.ns.count on bravo.test" in rows[0].subject
    # one good result is not enough; a warn counts as good
    assert feed(s, proc, result("ok", T0 + minutes(3))) == []
    assert feed(s, proc, result("warn", T0 + minutes(4))) == ["firing>resolved"]
    kinds = [r.kind for r in s.alerts.outbox()]
    assert kinds.count("resolved") == 2
    flip_rows = s.alerts.flips()
    assert [(f.old, f.new, f.old_status, f.new_status) for f in flip_rows] == [
        ("pending", "firing", "ok", "fail"), ("firing", "resolved", "fail", "warn")]


def test_problem_streak_broken_by_a_good_result_does_not_fire(tmp_path: Path) -> None:
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet())
    statuses = ["fail", "fail", "ok", "fail", "fail", "ok"]
    assert feed(s, proc, *[result(x, T0 + minutes(i)) for i, x in enumerate(statuses)]) == []


def test_per_check_thresholds_from_config(tmp_path: Path) -> None:
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet('[checks.dns]\nfailure_threshold = 1\nsuccess_threshold = 3\n'))
    assert feed(s, proc, result("fail", T0)) == ["ok>firing"]  # no problem counted before
    goods = [result("ok", T0 + minutes(i)) for i in (1, 2)]
    assert feed(s, proc, *goods) == []
    assert feed(s, proc, result("ok", T0 + minutes(3))) == ["firing>resolved"]
    # other families keep the defaults (3)
    web = [result("fail", T0 + minutes(i), check="web.hsts", family="web") for i in (1, 2)]
    assert feed(s, proc, *web) == []


def test_reminders_at_the_minimum_interval_while_firing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WT_TEST_APPRISE_URL", "json://127.0.0.1:1/")
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet(CHANNELS))
    feed(s, proc, *[result("fail", T0 + minutes(i)) for i in range(3)])  # fires at minute 2
    feed(s, proc, *[result("fail", T0 + minutes(i)) for i in range(3, 62, 5)])  # up to 57
    assert [r.kind for r in s.alerts.outbox(None) if r.channel == "ops-mail"] == ["firing"]
    feed(s, proc, result("fail", T0 + minutes(62)))
    feed(s, proc, result("fail", T0 + minutes(70)))
    kinds = [r.kind for r in s.alerts.outbox() if r.channel == "ops-mail"]
    assert kinds == ["firing", "reminder"]
    assert "STILL FIRING" in s.alerts.outbox()[-1].subject


def test_channel_routing_by_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WT_TEST_APPRISE_URL", "json://127.0.0.1:1/")
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet(CHANNELS))
    feed(s, proc, *[result("fail", T0 + minutes(i), check="web.hsts", family="web")
                    for i in range(3)])
    assert [r.channel for r in s.alerts.outbox()] == ["ops-mail"]  # ops-matrix takes fedi and dns.*


def test_state_survives_a_restart(tmp_path: Path) -> None:
    s = store(tmp_path)
    cfg = fleet(CHANNELS.split("[[notifications.apprise]]")[0])
    proc = AlertProcessor(s, cfg)
    feed(s, proc, *[result("fail", T0 + minutes(i)) for i in range(3)])
    s.close()
    s2 = store(tmp_path)
    proc2 = AlertProcessor(s2, cfg)
    # still firing after the restart: more failures announce nothing new (no duplicate notice)
    assert feed(s2, proc2, result("fail", T0 + minutes(4))) == []
    assert [r.kind for r in s2.alerts.outbox()] == ["firing"]
    assert feed(s2, proc2, result("ok", T0 + minutes(5)), result("ok", T0 + minutes(6))) == [
        "firing>resolved"]
    assert [r.kind for r in s2.alerts.outbox()] == ["firing", "resolved"]


MAINTENANCE = CHANNELS.split("[[notifications.apprise]]")[0] + BRAVO_WINDOW


def test_maintenance_silences_then_announces_what_is_still_true(tmp_path: Path) -> None:
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet(MAINTENANCE))
    assert feed(s, proc, *[result("fail", T0 + minutes(i)) for i in range(3)]) == [
        "pending>firing"]
    assert s.alerts.outbox() == []  # silenced, but the alert state is true
    (state,) = s.alerts.states()
    assert state.firing and state.silenced_by == "bravo upgrade" and state.notified == "none"
    # probing goes on during the window; after it closes the firing alert is announced once
    feed(s, proc, result("fail", T0 + minutes(50)), result("fail", T0 + minutes(61)),
         result("fail", T0 + minutes(62)))
    assert [r.kind for r in s.alerts.outbox()] == ["firing"]


def test_an_alert_that_fires_and_resolves_inside_a_window_says_nothing(tmp_path: Path) -> None:
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet(MAINTENANCE))
    statuses = ["fail", "fail", "fail", "ok", "ok"]
    feed(s, proc, *[result(x, T0 + minutes(i)) for i, x in enumerate(statuses)])
    feed(s, proc, result("ok", T0 + minutes(70)))
    assert s.alerts.outbox() == []
    assert [f.new for f in s.alerts.flips()] == ["firing", "resolved"]  # but history has it


def test_other_targets_are_not_silenced(tmp_path: Path) -> None:
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet(MAINTENANCE))
    feed(s, proc, *[result("fail", T0 + minutes(i), target="alpha.test") for i in range(3)])
    assert [r.target for r in s.alerts.outbox()] == ["alpha.test"]


def test_channel_names_are_unique() -> None:
    import pytest

    from watchtower.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        fleet(CHANNELS.replace('name = "ops-matrix"', 'name = "ops-mail"'))
    assert "duplicate channel name 'ops-mail'" in info.value.problems[0]


def test_secrets_of_channels_and_metrics_auth_are_listed(monkeypatch) -> None:
    monkeypatch.setenv("WT_TEST_APPRISE_URL", "json://127.0.0.1:1/")
    monkeypatch.setenv("WT_TEST_METRICS", "pw")
    text = CHANNELS.replace("reminder_interval = 3600\n", "reminder_interval = 3600\n"
                            '[metrics]\nauth = { username = "p", password = { "$env" = '
                            '"WT_TEST_METRICS" } }\n')
    paths = {p for p, _ in fleet(text).secrets()}
    assert {"notifications.apprise[0].url", "metrics.auth.password"} <= paths
