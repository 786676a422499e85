"""Retention on SQLite and on a real PostgreSQL: rollups, evidence GC, idempotence, crash
safety, and readers (history, reports, dashboard) spanning raw and rolled-up days."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from sqlmodel import Session
from watchtower.dashboards.data import target_history

from watchtower.config import parse_fleet
from watchtower.model import Result, Status, Target, TargetKind, utcnow
from watchtower.report import Period, build_report
from watchtower.store import SCHEMA_VERSION, EvidenceRow, FlipRow, ResultRow, RollupRow, Store
from watchtower.store.retention import Policy, prune, split_by_day

TABLES = ("flip", "state", "result", "result_day", "evidence", "sweep", "schema_version")
DAY0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
ZONE = Target(TargetKind.ZONE, "a.test", tags=("customer:acme",))
STEP = dt.timedelta(minutes=5)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wt.db'}"
    else:
        url = request.getfixturevalue("postgres").url
    s = Store(url)
    yield s
    if request.param == "postgresql":
        with s.engine.begin() as conn:
            for table in TABLES:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    s.close()


def probe(status: Status, at: dt.datetime, summary: str = "", check: str = "dns.ns.count"
          ) -> Result:
    return Result(check, "dns", ZONE, status, summary or f"ns {status}",
                  {"seen": str(status), "summary": summary}, 10.0, at)


def sweep_day(store: Store, day: int, pattern: dict[int, Status]) -> None:
    """288 probes of one day; `pattern` maps probe index -> status from then on."""
    status = Status.OK
    for i in range(288):
        status = pattern.get(i, status)
        store.record([probe(status, DAY0 + dt.timedelta(days=day) + i * STEP)])


def counts(store: Store) -> tuple[int, int, int, int]:
    with Session(store.engine) as s:
        return tuple(s.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (ResultRow, RollupRow, FlipRow, EvidenceRow))


def test_split_by_day_is_exact_and_adds_up() -> None:
    first = DAY0 + dt.timedelta(hours=23)
    parts = split_by_day(first, first + 24 * STEP, 25)  # 23:00 day 0 .. 01:00 day 1
    assert [(d.day, n) for d, n, _f, _l in parts] == [(1, 12), (2, 13)]
    assert parts[0][2] == first and parts[1][3] == first + 24 * STEP
    assert split_by_day(first, first, 1) == [(first.date(), 1, first, first)]


def test_rollup_keeps_counts_worst_flips_and_last_verdict(store: Store) -> None:
    # day 0: ok, fail from probe 100 to 109, ok again; day 1: warn at the end; day 10: ok
    sweep_day(store, 0, {100: Status.FAIL, 110: Status.OK})
    sweep_day(store, 1, {280: Status.WARN})
    sweep_day(store, 10, {0: Status.OK})
    probes = store.probes_stored()
    before = store.history("dns.ns.count", "a.test")
    report = prune(store, Policy(raw_days=7), now=DAY0 + dt.timedelta(days=10, hours=12))
    assert report.streaks_folded == 4  # ok, fail, ok(..day 1 warn), warn (ended day 1)
    assert store.probes_stored() == probes  # every probe still counted
    days = {d.day.day: d for d in store.rollups("a.test")}
    d0, d1 = days[1], days[2]
    assert (d0.ok, d0.fail, d0.warn, d0.worst, d0.flips, d0.streaks) == (278, 10, 0, "fail", 2, 3)
    assert (d1.ok, d1.warn, d1.worst, d1.flips, d1.last_status) == (280, 8, "warn", 1, "warn")
    assert d1.last_summary == "ns warn" and store.evidence(d1.last_evidence_id or 0)["seen"] == "warn"
    # history: rolled-up days as rows per status (day's last status last), then raw streaks
    after = store.history("dns.ns.count", "a.test")
    assert [(h.status, h.count) for h in after] == [
        ("fail", 10), ("ok", 278), ("ok", 280), ("warn", 8), ("ok", 288)]
    assert sum(h.count for h in after) == sum(h.count for h in before)
    # the ongoing streak (day 10) stays raw, and the day-10 flip warn -> ok stays
    assert [f.new for f in store.flips()] == ["ok"]


def test_prune_is_idempotent_and_merges_days_across_runs(store: Store) -> None:
    sweep_day(store, 0, {50: Status.FAIL, 60: Status.OK, 200: Status.FAIL})
    sweep_day(store, 1, {0: Status.FAIL, 10: Status.OK})
    sweep_day(store, 9, {})
    # first run folds streaks that ended on day 0 only (cutoff day 1)
    prune(store, Policy(raw_days=7), now=DAY0 + dt.timedelta(days=8, hours=1))
    first = counts(store)
    again = prune(store, Policy(raw_days=7), now=DAY0 + dt.timedelta(days=8, hours=2))
    assert again.streaks_folded == 0 and counts(store) == first
    # the next day's run folds the fail streak that crossed midnight: 88 probes into day 0's
    # row written by the first run, 10 into day 1; the ok streak after it is still going (raw)
    prune(store, Policy(raw_days=7), now=DAY0 + dt.timedelta(days=9, hours=1))
    days = {d.day.day: d for d in store.rollups("a.test")}
    assert (days[1].ok, days[1].fail, days[1].flips, days[1].streaks) == (190, 98, 3, 4)
    assert (days[2].ok, days[2].fail, days[2].flips, days[2].last_status) == (0, 10, 0, "fail")
    assert store.probes_stored() == 288 * 3


def test_gc_removes_only_unreferenced_evidence(store: Store) -> None:
    # three bodies on day 0: "a" (folded, not the day's last), "b" (the day's last verdict),
    # and "c" (the current state, still raw)
    for i, summary in enumerate(["a", "a", "b"]):
        store.record([probe(Status.OK, DAY0 + i * STEP, summary)])
    store.record([probe(Status.OK, DAY0 + dt.timedelta(days=9), "c")])
    assert counts(store)[3] == 3
    report = prune(store, Policy(raw_days=7), now=DAY0 + dt.timedelta(days=9, hours=1))
    assert report.evidence_deleted == 1
    with Session(store.engine) as s:
        left = [str(b) for b in s.execute(select(EvidenceRow.body)).scalars()]
    assert ['"summary":"b"' in b for b in left].count(True) == 1
    assert ['"summary":"a"' in b for b in left].count(True) == 0
    # a writer whose memo still names the collected body records again without failing
    store.record([probe(Status.OK, DAY0 + dt.timedelta(days=9, minutes=5), "a")])
    assert store.history("dns.ns.count", "a.test")[-1].summary == "a"


def test_a_failed_chunk_leaves_nothing_half_done(store: Store, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    sweep_day(store, 0, {100: Status.FAIL, 110: Status.OK})
    sweep_day(store, 9, {})
    before = counts(store)
    from watchtower.store import retention

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("crash after writing rollups")

    real_delete = retention.delete
    calls = {"n": 0}

    def failing_delete(table):  # type: ignore[no-untyped-def]
        if table is retention.RES:
            calls["n"] += 1
            boom()
        return real_delete(table)

    monkeypatch.setattr(retention, "delete", failing_delete)
    with pytest.raises(RuntimeError):
        prune(store, Policy(raw_days=7), now=DAY0 + dt.timedelta(days=9, hours=1))
    assert calls["n"] == 1 and counts(store) == before  # rollups rolled back with the deletes
    monkeypatch.setattr(retention, "delete", real_delete)
    prune(store, Policy(raw_days=7), now=DAY0 + dt.timedelta(days=9, hours=1))
    assert store.probes_stored() == 288 * 2
    assert sum(d.probes for d in store.rollups()) == 110  # ok 0..99, fail 100..109


FLEET = """
[[zones]]
name = "a.test"
customer = "acme"
"""


def test_reports_and_dashboard_span_raw_and_rolled_up_days(store: Store) -> None:
    sweep_day(store, 0, {100: Status.FAIL, 124: Status.OK})  # 24 fail probes (2 h)
    for day in range(1, 10):
        sweep_day(store, day, {})
    fleet = parse_fleet(tomllib.loads(FLEET))
    period = Period(DAY0, DAY0 + dt.timedelta(days=10))
    before = build_report(store, fleet, "acme", period, checks={})
    prune(store, Policy(raw_days=3), now=DAY0 + dt.timedelta(days=10))
    assert store.rollups("a.test")  # days 0..6 rolled up
    after = build_report(store, fleet, "acme", period, checks={})
    (u0,), (u1,) = before.rows, after.rows
    assert (u1.probes.total, u1.probes.ok, u1.probes.fail) == (u0.probes.total, u0.probes.ok,
                                                                u0.probes.fail)
    assert (u1.probes.total, u1.probes.fail) == (2880, 24)
    # a period wholly in rolled-up days: exact counts, latest verdict from the day's end
    old = build_report(store, fleet, "acme", Period(DAY0, DAY0 + dt.timedelta(days=1)),
                       checks={})
    assert (old.rows[0].probes.total, old.rows[0].probes.fail) == (288, 24)
    assert [x.status for x in old.lines] == [Status.OK]
    # the dashboard's timeline shows a rolled-up day with its worst status, then raw streaks
    spans = target_history(store, "a.test")
    assert spans[0]["status"] == "fail" and spans[0]["probes"] == 124  # ok then the 2 h fail
    assert sum(s["probes"] for s in spans) == 2880


def test_availability_and_adhoc_runs_through_retention(store: Store) -> None:
    """A rolled-up day keeps how many probes of an availability signal got an answer, so the
    report's availability is the same before and after; ad-hoc streaks are dropped instead of
    rolled up (no figure counts them)."""
    for i in range(288):
        down = 100 <= i < 112  # one hour without an answer
        r = probe(Status.ERROR if down else Status.OK, DAY0 + i * STEP,
                  check="dns.ns.authoritative")
        r.answered = not down
        store.record([r])
        if i == 150:  # an operator's `watchtower check` in between
            adhoc = probe(Status.OK, DAY0 + i * STEP + STEP / 2, check="dns.ns.authoritative")
            adhoc.answered = True
            store.record([adhoc], store.begin_sweep("manual", 1, "adhoc"))
    # a day of 5-minute probes spans 23 h 55 min: under the default minimum of 24 h
    fleet = parse_fleet(tomllib.loads(FLEET + "[reporting]\nmin_span_hours = 12\n"))
    period = Period(DAY0, DAY0 + dt.timedelta(days=2))

    def answers() -> tuple[int, int, float | None, int]:
        report = build_report(store, fleet, "acme", period, checks={})
        (signal,) = report.rows[0].signals
        return (signal.answered, signal.unanswered, signal.percent(report.coverage),
                report.coverage.adhoc_left_out)

    assert answers() == (276, 12, round(100 * 276 / 288, 3), 1)
    prune(store, Policy(raw_days=1), now=DAY0 + dt.timedelta(days=3))
    assert store.rollups("a.test") and store.probes_stored() == 288  # the ad-hoc one is gone
    assert answers() == (276, 12, round(100 * 276 / 288, 3), 0)


def test_schema_5_database_migrates_to_the_current_one_with_its_history(store: Store
                                                                          ) -> None:
    sweep_day(store, 0, {100: Status.FAIL, 110: Status.OK})
    with store.engine.begin() as conn:  # back to what schema 5 had
        conn.exec_driver_sql("DROP TABLE result_day")
        conn.exec_driver_sql("DROP INDEX ix_result_target_check_last")
        conn.exec_driver_sql("CREATE INDEX ix_result_pair_last ON result "
                             "(check_id, target, last_at)")
        conn.exec_driver_sql("CREATE INDEX ix_result_last_at ON result (last_at)")
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_result_evidence_id")
        conn.exec_driver_sql("UPDATE schema_version SET version = 5")
    upgraded = Store(store.url)
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION == 12
        indexes = {ix["name"] for ix in inspect(upgraded.engine).get_indexes("result")}
        # evidence_id: the foreign key's lookups when retention deletes evidence (PostgreSQL)
        assert indexes == {"ix_result_target_check_last"} | (
            {"ix_result_evidence_id"} if upgraded.engine.dialect.name == "postgresql" else set())
        assert upgraded.probes_stored() == 288
        prune(upgraded, Policy(raw_days=7), now=DAY0 + dt.timedelta(days=9))
        assert upgraded.probes_stored() == 288 and upgraded.rollups("a.test")
    finally:
        upgraded.close()


def test_store_prune_verb_and_the_daily_job(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from watchtower.cli import main
    from watchtower.probe.scheduler import PRUNE_JOB, Scheduler

    db = tmp_path / "wt.db"
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text(f'[store]\ndatabase = "sqlite:///{db}"\n[retention]\nraw_days = 2\n'
                          '[[zones]]\nname = "a.test"\n')
    s = Store(f"sqlite:///{db}")
    old = utcnow() - dt.timedelta(days=5)
    s.record([probe(Status.FAIL, old), probe(Status.OK, old + STEP)])
    s.record([probe(Status.OK, utcnow())])
    assert main(["store", "prune", "-c", str(fleet_file), "--vacuum"]) == 0
    assert "1 streaks folded" in capsys.readouterr().out
    assert [d.probes for d in s.rollups()] == [1]
    s.close()
    fleet = parse_fleet(tomllib.loads(fleet_file.read_text()))
    store = Store(f"sqlite:///{db}")
    sched = Scheduler(fleet, store, {})
    sched.start(run_now=False)
    try:
        job = sched._sched.get_job(PRUNE_JOB)
        assert job is not None and job.next_run_time.hour == 3 and job.next_run_time.minute == 17
        assert PRUNE_JOB not in dict(sched.jobs())
    finally:
        sched.shutdown()
        store.close()
