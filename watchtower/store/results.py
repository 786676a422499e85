"""Recording results: sweeps, streaks, state, flips, evidence bodies and evidence gauges.

One batch of results is one transaction of set-based statements (SQLAlchemy Core, executemany),
not one ORM object per row: a sweep's writes compete for the GIL with its probes, so the store's
CPU per result bounds the whole sweep (profiled: ORM writes were 60 % of a sweep). Per result:
- the streak: extended when status, summary and evidence equal the pair's current streak and
  both are of the same kind (ad hoc or scheduled: the sweep's `kind`), else a new `result` row
  (see watchtower/store/tables/history.py);
- the `state` row (one per pair) and, when the status changed, a `flip`;
- the evidence body, once per distinct content (sha256, with an in-memory memo of ids);
- the evidence gauges (`watchtower.model.gauges_of`) in `check_gauge`: written here, with every
  record, so /metrics exports them whether or not alerting runs; a gauge the result no longer
  reports is dropped (no stale expiry).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, delete, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from watchtower.model import Result, Status, gauges_of, utcnow
from watchtower.store.db import Database, chunks
from watchtower.store.tables import EvidenceRow, FlipRow, StateRow, SweepRow
from watchtower.store.tables.core import EV, FLIP, GAUGE, RES, STATE, SWEEP

log = logging.getLogger(__name__)

STATE_COLUMNS = ("target_kind", "family", "status", "summary", "since", "last_at", "duration_ms",
                 "result_id", "evidence_id", "streak", "tags", "adhoc")
#: Sweep kinds (`SweepRow.kind`); every kind but the first is ad hoc.
SWEEP_KINDS = ("scheduled", "adhoc", "verify")
Pair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Flip:
    """A status change of one (check, target), as `record` returns it."""

    check: str
    target: str
    old: Status | None
    new: Status
    reason: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Batch:
    """What the rows of one recorded slice share: its sweep, whether that sweep is ad hoc, and
    each result's evidence id (in the slice's order)."""

    sweep_id: int | None
    adhoc: bool
    evidence_ids: Sequence[int]


def evidence_json(evidence: dict[str, Any]) -> str:
    return json.dumps(evidence, sort_keys=True, separators=(",", ":"), default=str)


class Results:
    """The write path and the current-state reads of the `Store` (a mixin: needs `self.db`)."""

    db: Database
    _evidence_ids: dict[str, int]

    # -- sweeps -----------------------------------------------------------------------------

    def begin_sweep(self, schedule: str, total: int, kind: str = "scheduled") -> int:
        """Open a sweep; `kind` is scheduled, adhoc (`watchtower check`) or verify."""
        if kind not in SWEEP_KINDS:
            raise ValueError(f"sweep kind {kind!r} is not one of {', '.join(SWEEP_KINDS)}")

        def step() -> int:
            with Session(self.db.engine) as s:
                row = SweepRow(schedule=schedule, started_at=utcnow(), total=total, kind=kind)
                s.add(row)
                s.commit()
                assert row.id is not None
                return row.id

        return self.db.retry(step)

    def finish_sweep(self, sweep_id: int, counts: dict[Status, int],
                     state: str = "done") -> None:
        def step() -> None:
            with Session(self.db.engine) as s:
                row = s.get(SweepRow, sweep_id)
                if row is None:
                    return
                row.finished_at = utcnow()
                row.state = state
                row.ok, row.warn = counts.get(Status.OK, 0), counts.get(Status.WARN, 0)
                row.fail, row.error = counts.get(Status.FAIL, 0), counts.get(Status.ERROR, 0)
                s.add(row)
                s.commit()

        self.db.retry(step)

    def mark_interrupted(self) -> int:
        """Sweeps left running by a crash are closed as `interrupted`; their results stay."""

        def step() -> int:
            with self.db.engine.begin() as conn:
                done = conn.execute(update(SWEEP).where(SWEEP.c.state == "running")
                                    .values(state="interrupted"))
                return int(done.rowcount or 0)

        return self.db.retry(step)

    # -- results ----------------------------------------------------------------------------

    def record(self, results: Sequence[Result], sweep_id: int | None = None) -> list[Flip]:
        """Store a batch of results in one transaction; returns the status flips it caused."""
        if not results:
            return []
        try:
            return self.db.retry(lambda: self._record(results, sweep_id))
        except IntegrityError:
            # Retention run by another process (`watchtower store prune`) may have collected
            # an evidence body this process's memo still names; the failed batch cleared the
            # memo, so one more try looks every body up afresh.
            log.info("evidence memo was stale (collected by retention?); recording again")
            return self.db.retry(lambda: self._record(results, sweep_id))

    def forget_evidence_ids(self) -> None:
        """Drop the evidence id memo (retention collected bodies). Swapped, not cleared, so a
        batch being recorded in another thread keeps a consistent view."""
        self._evidence_ids = {}

    def _record(self, results: Sequence[Result], sweep_id: int | None) -> list[Flip]:
        flips: list[Flip] = []
        try:
            with self.db.engine.begin() as conn:
                # A pair twice in one batch (rare) goes to the next slice, so every slice
                # sees the state its predecessor wrote.
                for part in _unique_pairs(results):
                    flips.extend(self._record_part(conn, part, sweep_id))
        except Exception:
            # The evidence id memo may name rows that were rolled back.
            self._evidence_ids.clear()
            raise
        return flips

    def _record_part(self, conn: Connection, results: Sequence[Result],
                     sweep_id: int | None) -> list[Flip]:
        bodies = [evidence_json(r.evidence) for r in results]
        digests = [hashlib.sha256(b.encode()).hexdigest() for b in bodies]
        ids = self._evidence_ids_for(conn, dict(zip(digests, bodies, strict=True)))
        evidence_ids = [ids[d] for d in digests]
        states = _state_map(conn, {(r.check, r.target.name) for r in results})
        batch = Batch(sweep_id, _is_adhoc(conn, sweep_id), evidence_ids)
        new_ids = _write_streaks(conn, results, batch, states)
        flips = _write_states(conn, results, batch, states, new_ids)
        _write_gauges(conn, results)
        return flips

    def _evidence_ids_for(self, conn: Connection, bodies: dict[str, str]) -> dict[str, int]:
        """Evidence ids by sha256 for the batch's bodies: memo, then one SELECT, then one
        multi-row INSERT for the bodies never seen before."""
        memo = self._evidence_ids  # one dict throughout: retention may swap in a new one
        ids = {d: memo[d] for d in bodies if d in memo}
        missing = [d for d in bodies if d not in ids]
        ids.update(_evidence_ids_of(conn, missing))
        new = [{"sha256": d, "body": bodies[d]} for d in missing if d not in ids]
        if new:
            conn.execute(insert(EV), new)
            ids.update(_evidence_ids_of(conn, [n["sha256"] for n in new]))
        if len(memo) > 200_000:
            memo.clear()
        memo.update(ids)
        return ids

    # -- current state ----------------------------------------------------------------------

    def current(self) -> list[StateRow]:
        with Session(self.db.engine) as s:
            return list(s.exec(select(StateRow)).all())

    def statuses(self) -> list[tuple[str, str, str, str]]:
        """(target, kind, family, status) of every state: what a compliance score needs."""
        q = sa_select(col(StateRow.target), col(StateRow.target_kind), col(StateRow.family),
                      col(StateRow.status))
        with self.db.engine.connect() as conn:
            return [(t, k, f, s) for t, k, f, s in conn.execute(q)]

    def evidence(self, evidence_id: int) -> dict[str, Any]:
        with Session(self.db.engine) as s:
            row = s.get(EvidenceRow, evidence_id)
            return json.loads(row.body) if row else {}

    def evidence_bodies(self, ids: Sequence[int | None]) -> dict[int, dict[str, Any]]:
        """Several evidence bodies by id in one query; a body that is not a JSON object is
        wrapped ({"raw": text} or {"value": v}) so callers always get a dict."""
        wanted = sorted({i for i in ids if i is not None})
        out: dict[int, dict[str, Any]] = {}
        with self.db.engine.connect() as conn:
            for part in chunks(wanted):
                for i, body in conn.execute(sa_select(EV.c.id, EV.c.body)
                                            .where(EV.c.id.in_(part))):
                    out[i] = _json_object(body)
        return out

    def flips(self, since: dt.datetime | None = None) -> list[FlipRow]:
        with Session(self.db.engine) as s:
            q = select(FlipRow)
            if since is not None:
                q = q.where(col(FlipRow.at) >= since)
            return list(s.exec(q.order_by(col(FlipRow.at))).all())

    def sweeps(self, limit: int = 50) -> list[SweepRow]:
        with Session(self.db.engine) as s:
            q = select(SweepRow).order_by(col(SweepRow.id).desc()).limit(limit)
            return list(s.exec(q).all())


def _json_object(body: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {"raw": body}
    return value if isinstance(value, dict) else {"value": value}


def _evidence_ids_of(conn: Connection, digests: Sequence[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for part in chunks(digests):
        for row_id, digest in conn.execute(sa_select(EV.c.id, EV.c.sha256)
                                           .where(EV.c.sha256.in_(part))):
            ids[digest] = row_id
    return ids


def _is_adhoc(conn: Connection, sweep_id: int | None) -> bool:
    """Whether results of this sweep are ad hoc (its kind is not `scheduled`); results recorded
    outside a sweep are scheduled ones."""
    if sweep_id is None:
        return False
    kind = conn.execute(sa_select(SWEEP.c.kind).where(SWEEP.c.id == sweep_id)).scalar()
    return kind is not None and kind != SWEEP_KINDS[0]


def _state_map(conn: Connection, keys: set[Pair]) -> dict[Pair, dict[str, Any]]:
    """The current state of these pairs, with `live`: whether its streak row still exists
    (retention may have folded an old one away), and `streak_adhoc`: whether that streak is
    ad hoc."""
    out: dict[Pair, dict[str, Any]] = {}
    checks = sorted({k[0] for k in keys})
    for part in chunks(sorted({k[1] for k in keys})):
        stmt = sa_select(STATE.c.check_id, STATE.c.target, STATE.c.status, STATE.c.summary,
                      STATE.c.since, STATE.c.result_id, STATE.c.evidence_id,
                      STATE.c.streak).where(STATE.c.check_id.in_(checks),
                                            STATE.c.target.in_(part))
        for row in conn.execute(stmt).mappings():
            key = (row["check_id"], row["target"])
            if key in keys:
                out[key] = dict(row)
    ids = sorted({st["result_id"] for st in out.values() if st["result_id"] is not None})
    live: dict[int, bool] = {}
    for part in chunks(ids):
        for row_id, adhoc in conn.execute(sa_select(RES.c.id, RES.c.adhoc)
                                          .where(RES.c.id.in_(part))):
            live[row_id] = bool(adhoc)
    for st in out.values():
        st["live"] = st["result_id"] in live
        st["streak_adhoc"] = bool(live.get(st["result_id"], False))
    return out


def _write_streaks(conn: Connection, results: Sequence[Result], batch: Batch,
                   states: dict[Pair, dict[str, Any]]) -> dict[Pair, int]:
    """Extend the streaks of unchanged results, start one for each other; returns the ids of
    the new streaks by pair."""
    extend: list[dict[str, Any]] = []
    fresh: list[dict[str, Any]] = []
    sweep_id = batch.sweep_id
    for r, evidence_id in zip(results, batch.evidence_ids, strict=True):
        st = states.get((r.check, r.target.name))
        if (st is not None and st["status"] == str(r.status) and st["summary"] == r.summary
                and st["evidence_id"] == evidence_id and st["live"]
                and st["streak_adhoc"] == batch.adhoc):
            extend.append({"rid": st["result_id"], "at": r.at, "d": r.duration_ms,
                           "sweep": sweep_id})
        else:
            fresh.append({
                "check_id": r.check, "target": r.target.name,
                "target_kind": str(r.target.kind), "family": r.family,
                "status": str(r.status), "summary": r.summary, "evidence_id": evidence_id,
                "first_at": r.at, "last_at": r.at, "count": 1,
                "duration_ms_last": r.duration_ms, "duration_ms_max": r.duration_ms,
                "duration_ms_sum": r.duration_ms, "sweep_first": sweep_id,
                "sweep_last": sweep_id, "adhoc": batch.adhoc, "answered": r.answered})
    if extend:
        d: Any = bindparam("d")
        conn.execute(
            update(RES).where(RES.c.id == bindparam("rid")).values(
                count=RES.c.count + 1, last_at=bindparam("at"), duration_ms_last=d,
                duration_ms_max=case((RES.c.duration_ms_max < d, d),
                                     else_=RES.c.duration_ms_max),
                duration_ms_sum=RES.c.duration_ms_sum + d, sweep_last=bindparam("sweep")),
            extend)
    new_ids: dict[Pair, int] = {}
    if fresh:
        rows = conn.execute(insert(RES).returning(RES.c.id, RES.c.check_id, RES.c.target,
                                                  sort_by_parameter_order=True), fresh)
        for row_id, check_id, target in rows:
            new_ids[(check_id, target)] = row_id
    return new_ids


def _write_states(conn: Connection, results: Sequence[Result], batch: Batch,
                  states: dict[Pair, dict[str, Any]], new_ids: dict[Pair, int]) -> list[Flip]:
    """Insert or update each pair's `state` row; a changed status is a flip (row and value)."""
    state_new: list[dict[str, Any]] = []
    state_upd: list[dict[str, Any]] = []
    flips: list[Flip] = []
    for r, evidence_id in zip(results, batch.evidence_ids, strict=True):
        key = (r.check, r.target.name)
        st = states.get(key)
        values = {"k_check": r.check, "k_target": r.target.name,
                  "target_kind": str(r.target.kind), "family": r.family,
                  "status": str(r.status), "summary": r.summary, "last_at": r.at,
                  "duration_ms": r.duration_ms,
                  "result_id": new_ids.get(key, st["result_id"] if st is not None else None),
                  "evidence_id": evidence_id, "tags": json.dumps(list(r.target.tags)),
                  "adhoc": batch.adhoc}
        if st is None:
            flips.append(Flip(r.check, r.target.name, None, r.status, r.summary, r.at))
            state_new.append({**values, "since": r.at, "streak": 1})
        elif st["status"] != values["status"]:
            flips.append(Flip(r.check, r.target.name, Status(st["status"]), r.status,
                              r.summary, r.at))
            state_upd.append({**values, "since": r.at, "streak": 1})
        else:
            state_upd.append({**values, "since": st["since"], "streak": st["streak"] + 1})
    if state_new:
        conn.execute(insert(STATE), [
            {("check_id" if k == "k_check" else "target" if k == "k_target" else k): v
             for k, v in row.items()} for row in state_new])
    if state_upd:
        conn.execute(update(STATE).where(STATE.c.check_id == bindparam("k_check"),
                                         STATE.c.target == bindparam("k_target"))
                     .values({c: bindparam(c) for c in STATE_COLUMNS}), state_upd)
    if flips:
        conn.execute(insert(FLIP), [
            {"check_id": f.check, "target": f.target, "at": f.at,
             "old": str(f.old) if f.old else None, "new": str(f.new),
             "reason": f.reason[:2000]} for f in flips])
    return flips


def _write_gauges(conn: Connection, results: Sequence[Result]) -> None:
    """Upsert each result's evidence gauges; drop those it no longer reports."""
    values = {(r.check, r.target.name): (r, gauges_of(r.check, r.evidence)) for r in results}
    existing: set[tuple[str, str, str]] = set()
    checks = sorted({k[0] for k in values})
    for part in chunks(sorted({k[1] for k in values})):
        for check_id, target, name in conn.execute(
                sa_select(GAUGE.c.check_id, GAUGE.c.target, GAUGE.c.name)
                .where(GAUGE.c.check_id.in_(checks), GAUGE.c.target.in_(part))):
            if (check_id, target) in values:
                existing.add((check_id, target, name))
    gone = [{"c": c, "t": t, "n": n} for c, t, n in existing if n not in values[(c, t)][1]]
    rows = [{"k_check": c, "k_target": t, "k_name": n, "family": r.family, "value": v,
             "at": r.at} for (c, t), (r, gauges) in values.items() for n, v in gauges.items()]
    if gone:
        conn.execute(delete(GAUGE).where(GAUGE.c.check_id == bindparam("c"),
                                         GAUGE.c.target == bindparam("t"),
                                         GAUGE.c.name == bindparam("n")), gone)
    known = [row for row in rows if (row["k_check"], row["k_target"], row["k_name"]) in existing]
    if known:
        conn.execute(update(GAUGE).where(GAUGE.c.check_id == bindparam("k_check"),
                                         GAUGE.c.target == bindparam("k_target"),
                                         GAUGE.c.name == bindparam("k_name"))
                     .values(family=bindparam("family"), value=bindparam("value"),
                             at=bindparam("at")), known)
    new = [{"check_id": row["k_check"], "target": row["k_target"], "name": row["k_name"],
            "family": row["family"], "value": row["value"], "at": row["at"]}
           for row in rows if (row["k_check"], row["k_target"], row["k_name"]) not in existing]
    if new:
        conn.execute(insert(GAUGE), new)


def _unique_pairs(results: Sequence[Result]) -> Iterator[list[Result]]:
    """Slices of the batch in which each (check, target) appears at most once."""
    part: list[Result] = []
    seen: set[Pair] = set()
    for r in results:
        key = (r.check, r.target.name)
        if key in seen:
            yield part
            part, seen = [], set()
        part.append(r)
        seen.add(key)
    if part:
        yield part
