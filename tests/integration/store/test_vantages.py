"""The scale-out room of the store (watchtower/store/vantages.py, schema 12) on SQLite and on
the real PostgreSQL: a tick's deferral is claimed once, results wait for the judge and go at
close, per-vantage state and agent heartbeats are upserts."""

from __future__ import annotations

import datetime as dt

from watchtower.model import Result, Status, Target, TargetKind
from watchtower.store import Store

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
WEB = Target(TargetKind.ENDPOINT, "www.a.test")


def result(status: Status, summary: str = "s") -> Result:
    return Result("web.hsts", "web", WEB, status, summary, {"max_age": 1}, 3.0, T0)


def test_a_tick_is_claimed_once(any_store: Store) -> None:
    assert any_store.vantages.open_deferral("every:60s", 1000, T0, 2)
    assert not any_store.vantages.open_deferral("every:60s", 1000, T0, 2)  # a second scheduler
    assert any_store.vantages.open_deferral("every:60s", 1060, T0, 2)


def test_due_when_complete_or_late_and_closed_once(any_store: Store) -> None:
    any_store.vantages.open_deferral("g", 1000, T0 + dt.timedelta(minutes=5), 2)
    assert any_store.vantages.due(T0) == []
    any_store.vantages.record("ams", "g", 1000, [result(Status.OK)])
    assert any_store.vantages.due(T0) == []  # one of two
    assert [d.tick for d in any_store.vantages.due(T0 + dt.timedelta(minutes=5))] == [1000]
    any_store.vantages.record("fra", "g", 1000, [result(Status.FAIL, "no")])
    assert [d.expected for d in any_store.vantages.due(T0)] == [2]
    reports = {r.vantage: r for r in any_store.vantages.reports("g", 1000)}
    assert (reports["fra"].status, reports["fra"].summary) == ("fail", "no")
    assert reports["ams"].evidence == {"max_age": 1} and reports["ams"].target == WEB.name
    any_store.vantages.close("g", 1000)
    assert any_store.vantages.due(T0 + dt.timedelta(days=1)) == []
    assert any_store.vantages.reports("g", 1000) == []


def test_vantage_state_and_agents_are_upserts(any_store: Store) -> None:
    any_store.vantages.record("ams", "g", 1, [result(Status.OK)])
    any_store.vantages.record("ams", "g", 2, [result(Status.ERROR)])
    assert any_store.vantages.states() == [("web.hsts", WEB.name, "endpoint", "ams", "error")]
    any_store.vantages.agent_seen("ams-1", "ams", T0)
    any_store.vantages.agent_seen("ams-2", "ams", T0 + dt.timedelta(seconds=5))
    any_store.vantages.agent_seen("ams-1", "ams", T0 + dt.timedelta(seconds=9))
    assert any_store.vantages.last_seen() == {"ams": T0 + dt.timedelta(seconds=9)}
    any_store.vantages.agent_gone("ams-1")
    assert any_store.vantages.last_seen() == {"ams": T0 + dt.timedelta(seconds=5)}


def test_judged_deferrals_are_pruned_once_old(any_store: Store) -> None:
    any_store.vantages.open_deferral("g", 1000, T0, 1)
    any_store.vantages.open_deferral("g", 2000, T0, 1)
    any_store.vantages.close("g", 1000)
    assert any_store.vantages.prune_deferrals(T0 + dt.timedelta(days=1)) == 1  # the open one stays
    assert [d.tick for d in any_store.vantages.due(T0)] == [2000]
    assert not any_store.vantages.open_deferral("g", 2000, T0, 1)
