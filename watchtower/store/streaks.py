"""The statements of one recorded batch (watchtower/store/results.py `record`): streaks
extended or begun, state rows and their flips, the evidence gauges. Set-based (executemany)
throughout: the store's CPU per result bounds a sweep.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, delete, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection

from watchtower.model import Result, Status, gauges_of
from watchtower.store.db import chunks
from watchtower.store.tables.core import FLIP, GAUGE, RES, STATE

STATE_COLUMNS = ("target_kind", "family", "status", "summary", "since", "last_at", "duration_ms",
                 "result_id", "evidence_id", "streak", "tags", "adhoc", "cause",
                 "cause_target")
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


def state_map(conn: Connection, keys: set[Pair]) -> dict[Pair, dict[str, Any]]:
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


def write_streaks(conn: Connection, results: Sequence[Result], batch: Batch,
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
                "sweep_last": sweep_id, "adhoc": batch.adhoc, "answered": r.answered,
                **cause_columns(r)})
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


def write_states(conn: Connection, results: Sequence[Result], batch: Batch,
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
                  "adhoc": batch.adhoc, **cause_columns(r)}
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


def write_gauges(conn: Connection, results: Sequence[Result]) -> None:
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


def cause_columns(r: Result) -> dict[str, str | None]:
    """The `cause` and `cause_target` columns of a result (None unless a prerequisite's
    failure caused it)."""
    return {"cause": r.cause.check if r.cause else None,
            "cause_target": r.cause.target if r.cause else None}


def unique_pairs(results: Sequence[Result]) -> Iterator[list[Result]]:
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
