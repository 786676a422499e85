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
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from watchtower.model import Result, Status, utcnow
from watchtower.store.db import Database, chunks
from watchtower.store.streaks import (
    Batch,
    Flip,
    Pair,
    state_map,
    unique_pairs,
    write_gauges,
    write_states,
    write_streaks,
)
from watchtower.store.tables import EvidenceRow, FlipRow, StateRow, SweepRow
from watchtower.store.tables.core import EV, STATE, SWEEP

log = logging.getLogger(__name__)

#: Sweep kinds (`SweepRow.kind`); every kind but the first is ad hoc.
SWEEP_KINDS = ("scheduled", "adhoc", "verify")


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
                for part in unique_pairs(results):
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
        states = state_map(conn, {(r.check, r.target.name) for r in results})
        batch = Batch(sweep_id, _is_adhoc(conn, sweep_id), evidence_ids)
        new_ids = write_streaks(conn, results, batch, states)
        flips = write_states(conn, results, batch, states, new_ids)
        write_gauges(conn, results)
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

    def caused_by(self) -> dict[Pair, list[str]]:
        """Per root cause (check, target), the pairs whose current result it left unjudged,
        as sorted "check on target" lines: what an incident lists (watchtower/alerting)."""
        q = (sa_select(STATE.c.check_id, STATE.c.target, STATE.c.cause, STATE.c.cause_target)
             .where(STATE.c.cause.is_not(None)))
        out: dict[Pair, list[str]] = {}
        with self.db.engine.connect() as conn:
            for check_id, target, cause, cause_target in conn.execute(q):
                out.setdefault((cause, cause_target), []).append(f"{check_id} on {target}")
        for lines in out.values():
            lines.sort()
        return out

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
