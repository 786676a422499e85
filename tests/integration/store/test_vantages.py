"""The scale-out room of the store (watchtower/store/vantages.py, schema 12) on SQLite and on
the real PostgreSQL: a tick's deferral is claimed once, results wait for the judge and go at
close, per-vantage state and agent heartbeats are upserts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from watchtower.model import Result, Status, Target, TargetKind
from watchtower.store import Store

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
WEB = Target(TargetKind.ENDPOINT, "www.a.test")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wt.db'}"
    else:
        url = request.getfixturevalue("postgres").url
    s = Store(url)
    yield s
    if request.param == "postgresql":
        with s.engine.begin() as conn:
            for table in SQLModel.metadata.tables:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    s.close()


def result(status: Status, summary: str = "s") -> Result:
    return Result("web.hsts", "web", WEB, status, summary, {"max_age": 1}, 3.0, T0)


def test_a_tick_is_claimed_once(store: Store) -> None:
    assert store.vantages.open_deferral("every:60s", 1000, T0, 2)
    assert not store.vantages.open_deferral("every:60s", 1000, T0, 2)  # a second scheduler
    assert store.vantages.open_deferral("every:60s", 1060, T0, 2)


def test_due_when_complete_or_late_and_closed_once(store: Store) -> None:
    store.vantages.open_deferral("g", 1000, T0 + dt.timedelta(minutes=5), 2)
    assert store.vantages.due(T0) == []
    store.vantages.record("ams", "g", 1000, [result(Status.OK)])
    assert store.vantages.due(T0) == []  # one of two
    assert [d.tick for d in store.vantages.due(T0 + dt.timedelta(minutes=5))] == [1000]
    store.vantages.record("fra", "g", 1000, [result(Status.FAIL, "no")])
    assert [d.expected for d in store.vantages.due(T0)] == [2]
    reports = {r.vantage: r for r in store.vantages.reports("g", 1000)}
    assert (reports["fra"].status, reports["fra"].summary) == ("fail", "no")
    assert reports["ams"].evidence == {"max_age": 1} and reports["ams"].target == WEB.name
    store.vantages.close("g", 1000)
    assert store.vantages.due(T0 + dt.timedelta(days=1)) == []
    assert store.vantages.reports("g", 1000) == []


def test_vantage_state_and_agents_are_upserts(store: Store) -> None:
    store.vantages.record("ams", "g", 1, [result(Status.OK)])
    store.vantages.record("ams", "g", 2, [result(Status.ERROR)])
    assert store.vantages.states() == [("web.hsts", WEB.name, "endpoint", "ams", "error")]
    store.vantages.agent_seen("ams-1", "ams", T0)
    store.vantages.agent_seen("ams-2", "ams", T0 + dt.timedelta(seconds=5))
    store.vantages.agent_seen("ams-1", "ams", T0 + dt.timedelta(seconds=9))
    assert store.vantages.last_seen() == {"ams": T0 + dt.timedelta(seconds=9)}
    store.vantages.agent_gone("ams-1")
    assert store.vantages.last_seen() == {"ams": T0 + dt.timedelta(seconds=5)}


def test_judged_deferrals_are_pruned_once_old(store: Store) -> None:
    store.vantages.open_deferral("g", 1000, T0, 1)
    store.vantages.open_deferral("g", 2000, T0, 1)
    store.vantages.close("g", 1000)
    assert store.vantages.prune_deferrals(T0 + dt.timedelta(days=1)) == 1  # the open one stays
    assert [d.tick for d in store.vantages.due(T0)] == [2000]
    assert not store.vantages.open_deferral("g", 2000, T0, 1)
