"""The store round-trips on SQLite and on a real PostgreSQL server started by the suite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlmodel import Session, SQLModel, select

from watchtower.model import Cause, Result, Status, Target, TargetKind
from watchtower.store import SCHEMA_VERSION, EvidenceRow, GaugeRow, ResultRow, Store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wt.db'}"
    else:
        pg = request.getfixturevalue("postgres")
        url = pg.fresh_database_url() if hasattr(pg, "fresh_database_url") else pg.url
    s = Store(url)
    yield s
    if request.param == "postgresql":
        with s.engine.begin() as conn:
            for table in SQLModel.metadata.tables:  # every table of the store
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    s.close()


T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
ZONE = Target(TargetKind.ZONE, "a.test", tags=("customer:acme",))


def result(status: Status, summary: str, minutes: int, evidence: dict | None = None) -> Result:  # type: ignore[type-arg]
    return Result("dns.ns.count", "dns", ZONE, status, summary, evidence or {"ns": 2},
                  12.5, T0 + dt.timedelta(minutes=minutes))


def test_schema_is_versioned(store: Store) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    assert store.migrate() == SCHEMA_VERSION  # idempotent


def test_a_new_store_is_quiet_and_an_upgrade_is_one_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import sqlite3

    url = f"sqlite:///{tmp_path / 'wt.db'}"
    with caplog.at_level(logging.DEBUG, logger="watchtower.store"):
        Store(url).close()
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert info == []  # a fresh install says nothing about the steps of its schema
    assert f"store created at schema {SCHEMA_VERSION}" in caplog.messages
    with sqlite3.connect(tmp_path / "wt.db") as conn:  # a store of an older watchtower
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION - 2,))
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="watchtower.store"):
        Store(url).close()
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert info == [f"store upgraded from schema {SCHEMA_VERSION - 2} to {SCHEMA_VERSION}"]


def test_postgresql_indexes_the_evidence_a_streak_names(store: Store) -> None:
    """Retention deletes unreferenced evidence; PostgreSQL's foreign-key check then looks up
    `result.evidence_id`, a scan of every streak per body without this index."""
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(store.engine).get_indexes("result")}
    if store.engine.dialect.name == "postgresql":
        assert indexes["ix_result_evidence_id"] == ["evidence_id"]
    else:  # SQLite skips the check during collection and saves the index's pages
        assert "ix_result_evidence_id" not in indexes


def test_identical_results_extend_a_streak(store: Store) -> None:
    sweep = store.begin_sweep("manual", 1)
    for minute in range(5):
        store.record([result(Status.OK, "2 name servers", minute)], sweep)
    history = store.history("dns.ns.count", "a.test")
    assert len(history) == 1 and history[0].count == 5
    assert history[0].last_at.replace(tzinfo=dt.UTC) == T0 + dt.timedelta(minutes=4)
    assert store.probes_stored() == 5


def test_changes_start_new_rows_and_flips(store: Store) -> None:
    flips = store.record([result(Status.OK, "2 name servers", 0)])
    assert [(f.old, f.new) for f in flips] == [(None, Status.OK)]
    flips = store.record([result(Status.FAIL, "1 name server", 5, {"ns": 1})])
    assert [(f.old, f.new) for f in flips] == [(Status.OK, Status.FAIL)]
    store.record([result(Status.FAIL, "1 name server", 10, {"ns": 1})])
    store.record([result(Status.OK, "2 name servers", 15)])
    history = store.history("dns.ns.count", "a.test")
    assert [(h.status, h.count) for h in history] == [("ok", 1), ("fail", 2), ("ok", 1)]
    # the first and last streaks share one evidence body
    assert history[0].evidence_id == history[2].evidence_id
    assert store.evidence(history[1].evidence_id or 0) == {"ns": 1}
    (state,) = store.current()
    assert state.status == "ok" and state.tags == '["customer:acme"]'
    assert [f.new for f in store.flips()] == ["ok", "fail", "ok"]


def test_sweeps_left_running_are_marked_interrupted(store: Store) -> None:
    sid = store.begin_sweep("every:60s", 10)
    store.record([result(Status.OK, "2 name servers", 0)], sid)
    assert store.mark_interrupted() == 1
    (row,) = store.sweeps()
    assert row.state == "interrupted"
    assert store.probes_stored() == 1  # what was stored before the crash stays


def test_evidence_is_deduplicated(store: Store) -> None:
    targets = [Target(TargetKind.ZONE, f"z{i}.test") for i in range(10)]
    store.record([Result("dns.ns.count", "dns", t, Status.OK, "2", {"same": True}, 1, T0)
                  for t in targets])
    with Session(store.engine) as s:
        assert len(s.exec(select(EvidenceRow)).all()) == 1
        assert len(s.exec(select(ResultRow)).all()) == 10


def test_evidence_gauges_are_kept_with_each_result(store: Store) -> None:
    """`record` keeps a result's evidence gauges (what /metrics exports) in the same
    transaction, alerting or not: invalid ones are dropped, a changed value is updated, a gauge
    the next result lacks is deleted, and other pairs keep theirs."""
    other = Target(TargetKind.ZONE, "b.test")
    ev = {"ns": 2, "metrics": {"rrsig_expiry_timestamp_seconds": 1.8e9, "Bad-Name": 1,
                               "flag": True, "nan": float("nan")}}
    store.record([result(Status.OK, "signed", 0, ev),
                  Result("dns.ns.count", "dns", other, Status.OK, "signed",
                         {"metrics": {"rrsig_expiry_timestamp_seconds": 1.7e9}}, 1.0, T0)])

    def gauges() -> dict[tuple[str, str], float]:
        with Session(store.engine) as s:
            return {(g.target, g.name): g.value for g in s.exec(select(GaugeRow)).all()}

    assert gauges() == {("a.test", "rrsig_expiry_timestamp_seconds"): 1.8e9,
                        ("b.test", "rrsig_expiry_timestamp_seconds"): 1.7e9}
    store.record([result(Status.OK, "signed", 1,
                         {"metrics": {"rrsig_expiry_timestamp_seconds": 1.9e9}})])
    assert gauges()[("a.test", "rrsig_expiry_timestamp_seconds")] == 1.9e9
    store.record([result(Status.ERROR, "timeout", 2, {})])
    assert gauges() == {("b.test", "rrsig_expiry_timestamp_seconds"): 1.7e9}


def test_a_caused_error_keeps_its_root_cause_in_state_and_history(store: Store) -> None:
    """The root failure of an error a prerequisite caused is stored with the result: incidents
    group by it and the score leaves the result out (watchtower/probe/dependencies.py)."""
    caused = Result("dns.ns.count", "dns", ZONE, Status.ERROR, "not judged", {}, 0.0, T0,
                    cause=Cause("web.tls.certificate", "a.test:443"))
    store.record([caused])
    (state,) = store.current()
    assert (state.cause, state.cause_target) == ("web.tls.certificate", "a.test:443")
    with Session(store.engine) as s:
        (row,) = s.exec(select(ResultRow)).all()
    assert (row.cause, row.cause_target) == ("web.tls.certificate", "a.test:443")
    store.record([result(Status.OK, "2 name servers", 1)])  # judged again: no cause
    (state,) = store.current()
    assert state.cause is None and state.cause_target is None


def test_schema_10_database_gets_the_cause_columns(store: Store) -> None:
    store.record([result(Status.OK, "2 name servers", 0)])
    with store.engine.begin() as conn:  # back to what schema 10 had
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_state_cause")
        for table in ("result", "state"):
            for column in ("cause", "cause_target"):
                conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.exec_driver_sql("UPDATE schema_version SET version = 10")
    upgraded = Store(store.url)
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        for table in ("result", "state"):
            columns = {c["name"] for c in inspect(upgraded.engine).get_columns(table)}
            assert {"cause", "cause_target"} <= columns
        assert "ix_state_cause" in {ix["name"] for ix in inspect(upgraded.engine)
                                    .get_indexes("state")}
        (state,) = upgraded.current()
        assert state.cause is None and state.status == "ok"  # the old row is kept
        upgraded.record([Result("dns.ns.count", "dns", ZONE, Status.ERROR, "not judged", {},
                                0.0, T0 + dt.timedelta(minutes=1),
                                cause=Cause("dns.ns.authoritative", "a.test"))])
        (state,) = upgraded.current()
        assert state.cause == "dns.ns.authoritative"
    finally:
        upgraded.close()


def test_adhoc_runs_are_stored_as_such_and_never_extend_a_scheduled_streak(store: Store
                                                                           ) -> None:
    """A `watchtower check` between two scheduled sweeps updates the current state but is its
    own streak: the scheduled history reads on without it (`include_adhoc=False`)."""
    for minute, kind in ((0, "scheduled"), (5, "adhoc"), (10, "scheduled")):
        sweep = store.begin_sweep("manual" if kind == "adhoc" else "every:300s", 1, kind)
        store.record([result(Status.OK, "2 name servers", minute)], sweep)
    history = store.history("dns.ns.count", "a.test")
    assert [(h.count, h.adhoc) for h in history] == [(1, False), (1, True), (1, False)]
    scheduled = store.spans(["a.test"], include_adhoc=False)
    assert [h.count for h in scheduled] == [1, 1]
    (state,) = store.current()
    assert not state.adhoc and state.streak == 3  # the verdict held through all three
    assert [s.kind for s in reversed(store.sweeps())] == ["scheduled", "adhoc", "scheduled"]
    with pytest.raises(ValueError, match="not one of"):
        store.begin_sweep("manual", 1, "sometimes")


def test_the_answer_of_an_availability_signal_is_kept_per_streak(store: Store) -> None:
    probe = Result("dns.ns.authoritative", "dns", ZONE, Status.FAIL, "no answer", {}, 1.0, T0,
                   answered=False)
    store.record([probe])
    (row,) = store.history("dns.ns.authoritative", "a.test")
    assert row.answered is False
    store.record([result(Status.OK, "2 name servers", 0)])
    assert store.history("dns.ns.count", "a.test")[0].answered is None  # not a signal


def test_schema_9_database_migrates_to_sweep_kinds(store: Store) -> None:
    """Step 10 adds the kind of a sweep and what the streaks know of it; a database of schema 9
    keeps its history, and its `watchtower check` and verification sweeps become ad hoc."""
    for minute, schedule in ((0, "every:300s"), (5, "manual"), (10, "verify")):
        sweep = store.begin_sweep(schedule, 1)
        store.record([result(Status.OK if minute != 5 else Status.FAIL, "ns", minute)], sweep)
    with store.engine.begin() as conn:  # back to what schema 9 had
        for table, column in (("sweep", "kind"), ("result", "adhoc"), ("result", "answered"),
                              ("result_day", "answered"), ("result_day", "unanswered"),
                              ("state", "adhoc")):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.exec_driver_sql("UPDATE schema_version SET version = 9")
    upgraded = Store(store.url)
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION == 12
        assert [s.kind for s in reversed(upgraded.sweeps())] == ["scheduled", "adhoc", "verify"]
        history = upgraded.history("dns.ns.count", "a.test")
        assert [(h.status, h.adhoc) for h in history] == [("ok", False), ("fail", True),
                                                          ("ok", True)]
        (state,) = upgraded.current()
        assert state.adhoc  # its latest result came from a verification
        assert upgraded.migrate() == SCHEMA_VERSION  # idempotent
    finally:
        upgraded.close()
