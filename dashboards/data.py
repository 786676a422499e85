"""What the pages show, read from the store: pure assembly functions over small queries.

Speed is a feature here: the overview must stay within two seconds at 1,000 domains x the full
catalog. So it reads only the `state` table (one row per check and target, never the history),
lets the database group it (`GROUP BY target, family, status`: tens of thousands of states become
a few thousand groups), and builds its rows in plain Python. Column queries (not ORM objects)
keep SQLAlchemy's per-row cost low while still converting datetimes.

Everything takes an `Engine` and returns plain dataclasses or lists of dicts, so each piece is
tested without Streamlit and the page scripts only lay them out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from watchtower.compliance import explanations
from watchtower.compliance.score import Placement
from watchtower.model import Status
from watchtower.store import (
    EvidenceRow,
    FlipRow,
    ResultRow,
    RollupRow,
    StateRow,
    SweepRow,
    aware,
)
from watchtower.store import explanations as explanation_store
from watchtower.store.alerting import GaugeRow
from watchtower.store.dashboard import AcknowledgementRow

STATUS_ORDER = ("fail", "error", "warn", "ok")  # worst first, as people scan
ICON = {"ok": "🟢", "warn": "🟡", "error": "🟣", "fail": "🔴"}
LABEL = {"ok": "ok", "warn": "warn", "error": "error (probe could not run)", "fail": "fail"}


def rank(status: str) -> int:
    """Order of badness: fail > error > warn > ok (an unknown status counts as error)."""
    try:
        return Status(status).rank
    except ValueError:
        return Status.ERROR.rank


def badge(status: str) -> str:
    return f"{ICON.get(status, '⚪')} {status}"


# -- overview -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverviewFilter:
    """Empty tuples mean "all"; `search` matches target names (case-insensitive substring)."""

    families: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    search: str = ""


@dataclass(frozen=True, slots=True)
class StateGroup:
    """How many checks of one family on one target are in one status."""

    target: str
    kind: str
    family: str
    status: str
    count: int
    tags: tuple[str, ...]


@dataclass(slots=True)
class Cell:
    worst: str
    at_worst: int  # how many checks are at the worst status
    total: int

    def text(self) -> str:
        more = f" x{self.at_worst}" if self.worst != "ok" and self.at_worst > 1 else ""
        return f"{ICON.get(self.worst, '⚪')} {self.worst}{more}"


@dataclass(slots=True)
class OverviewRow:
    target: str
    kind: str
    tags: tuple[str, ...]
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def worst(self) -> str:
        return max((c.worst for c in self.cells.values()), key=rank, default="ok")

    @property
    def problems(self) -> int:
        return sum(c.at_worst for c in self.cells.values() if c.worst in ("fail", "error"))

    def sort_key(self) -> tuple[int, int, str, str]:
        return (-rank(self.worst), -self.problems, self.target, self.kind)


@dataclass(slots=True)
class Overview:
    families: list[str]  # every family in the store (for the filter)
    tags: list[str]  # every tag in the store (for the filter)
    shown_families: list[str]
    counts: dict[str, int]  # status -> number of check results, after the filters
    rows: list[OverviewRow]  # worst first
    total_targets: int  # before the filters

    def table(self) -> list[dict[str, Any]]:
        """One dict per target: name, kind, worst, then one text cell per family."""
        out = []
        for r in self.rows:
            row: dict[str, Any] = {"target": r.target, "kind": r.kind,
                                   "worst": badge(r.worst), "problems": r.problems}
            for fam in self.shown_families:
                cell = r.cells.get(fam)
                row[fam] = cell.text() if cell else ""
            row["tags"] = ", ".join(r.tags)
            out.append(row)
        return out


def load_state_groups(engine: Engine) -> list[StateGroup]:
    """The state table grouped by target, family and status (the database does the work)."""
    q = (select(col(StateRow.target), col(StateRow.target_kind), col(StateRow.family),
                col(StateRow.status), func.count(), func.max(StateRow.tags))
         .group_by(col(StateRow.target), col(StateRow.target_kind), col(StateRow.family),
                   col(StateRow.status)))
    tag_cache: dict[str, tuple[str, ...]] = {}
    out = []
    with engine.connect() as conn:
        for target, kind, family, status, n, tags in conn.execute(q):
            parsed = tag_cache.get(tags)
            if parsed is None:
                parsed = tag_cache[tags] = _tags(tags)
            out.append(StateGroup(target, kind, family, status, int(n), parsed))
    return out


def _tags(raw: str | None) -> tuple[str, ...]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return ()
    return tuple(str(t) for t in value) if isinstance(value, list) else ()


def build_overview(groups: Iterable[StateGroup], filt: OverviewFilter = OverviewFilter()
                   ) -> Overview:
    """Targets x families, worst first, after the filters (pure; see module docstring)."""
    families: set[str] = set()
    tags: set[str] = set()
    rows: dict[tuple[str, str], OverviewRow] = {}
    wanted_fams = set(filt.families)
    wanted_tags = set(filt.tags)
    needle = filt.search.strip().lower()
    all_targets: set[tuple[str, str]] = set()
    for g in groups:
        families.add(g.family)
        tags.update(g.tags)
        key = (g.target, g.kind)
        all_targets.add(key)
        if wanted_fams and g.family not in wanted_fams:
            continue
        if wanted_tags and not wanted_tags.intersection(g.tags):
            continue
        if needle and needle not in g.target.lower():
            continue
        row = rows.get(key)
        if row is None:
            row = rows[key] = OverviewRow(g.target, g.kind, g.tags)
        cell = row.cells.get(g.family)
        if cell is None:
            row.cells[g.family] = Cell(g.status, g.count, g.count)
            continue
        cell.total += g.count
        if rank(g.status) > rank(cell.worst):
            cell.worst, cell.at_worst = g.status, g.count
        elif g.status == cell.worst:
            cell.at_worst += g.count
    kept = [r for r in rows.values() if not filt.statuses or r.worst in filt.statuses]
    kept.sort(key=OverviewRow.sort_key)
    counts = dict.fromkeys(STATUS_ORDER, 0)
    kept_keys = {(r.target, r.kind) for r in kept}
    for g in groups:
        if ((g.target, g.kind) in kept_keys and (not wanted_fams or g.family in wanted_fams)):
            counts[g.status] = counts.get(g.status, 0) + g.count
    shown = sorted(wanted_fams & families) if wanted_fams else sorted(families)
    return Overview(sorted(families), sorted(tags), shown, counts, kept, len(all_targets))


def overview(engine: Engine, filt: OverviewFilter = OverviewFilter()) -> Overview:
    return build_overview(load_state_groups(engine), filt)


# -- what changed -------------------------------------------------------------------------


@dataclass(slots=True)
class Changes:
    since: dt.datetime
    new_problems: int = 0  # became fail or error
    resolved: int = 0  # left fail or error
    first_seen: int = 0  # a check seen for the first time
    other: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # newest first, capped


def changes_since(engine: Engine, since: dt.datetime, limit: int = 300) -> Changes:
    """Status flips since a moment (the `flip` table, indexed by time)."""
    q = (select(col(FlipRow.at), col(FlipRow.target), col(FlipRow.check_id), col(FlipRow.old),
                col(FlipRow.new), col(FlipRow.reason))
         .where(col(FlipRow.at) >= since).order_by(col(FlipRow.at).desc()))
    out = Changes(since)
    with engine.connect() as conn:
        for at, target, check, old, new, reason in conn.execute(q):
            was_problem = old in ("fail", "error")
            is_problem = new in ("fail", "error")
            if old is None:
                out.first_seen += 1
            elif is_problem and not was_problem:
                out.new_problems += 1
            elif was_problem and not is_problem:
                out.resolved += 1
            else:
                out.other += 1
            if len(out.rows) < limit and old is not None:
                out.rows.append({"at": aware(at), "target": target, "check": check,
                                 "change": f"{ICON.get(old, '⚪')} {old} → "
                                           f"{ICON.get(new, '⚪')} {new}",
                                 "reason": reason})
    return out


def problems(engine: Engine, filt: OverviewFilter = OverviewFilter(), limit: int = 500,
             statuses: Sequence[str] = ("fail", "error")) -> list[dict[str, Any]]:
    """The current problems, worst and oldest first, with whether someone acknowledged them."""
    q = (select(col(StateRow.check_id), col(StateRow.target), col(StateRow.target_kind),
                col(StateRow.family), col(StateRow.status), col(StateRow.summary),
                col(StateRow.since), col(StateRow.tags))
         .where(col(StateRow.status).in_(list(statuses))))
    if filt.families:
        q = q.where(col(StateRow.family).in_(list(filt.families)))
    with engine.connect() as conn:
        raw = list(conn.execute(q))
    needle = filt.search.strip().lower()
    rows: list[dict[str, Any]] = []
    for check, target, kind, family, status, summary, since, tags in raw:
        if filt.tags and not set(filt.tags).intersection(_tags(tags)):
            continue
        if needle and needle not in target.lower():
            continue
        rows.append({"status": status, "target": target, "kind": kind, "family": family,
                     "check": check, "summary": summary, "since": aware(since)})
    rows.sort(key=lambda r: (-rank(r["status"]), r["since"], r["target"], r["check"]))
    rows = rows[:limit]
    acks = current_acks(engine, [(r["check"], r["target"]) for r in rows])
    for r in rows:
        ack = acks.get((r["check"], r["target"]))
        r["acknowledged"] = f"{ack.by}: {ack.note}".rstrip(": ") if ack else ""
        r["status"] = badge(r["status"])
    return rows


# -- acknowledgements ---------------------------------------------------------------------


def current_acks(engine: Engine, keys: Sequence[tuple[str, str]]
                 ) -> dict[tuple[str, str], AcknowledgementRow]:
    """Acknowledgements that still apply: same status and same episode (`since`) as now."""
    if not keys:
        return {}
    wanted = set(keys)
    with Session(engine) as s:
        acks = [a for a in s.execute(select(AcknowledgementRow).where(
            col(AcknowledgementRow.check_id).in_(sorted({k[0] for k in keys})),
            col(AcknowledgementRow.target).in_(sorted({k[1] for k in keys})))
            .order_by(col(AcknowledgementRow.id))).scalars().all()
            if (a.check_id, a.target) in wanted]
        if not acks:  # the common case: nothing acknowledged, no second query
            return {}
        acked = {(a.check_id, a.target) for a in acks}
        states = {(st.check_id, st.target): st for st in s.execute(
            select(StateRow).where(col(StateRow.check_id).in_(sorted({k[0] for k in acked})),
                                   col(StateRow.target).in_(sorted({k[1] for k in acked}))))
            .scalars() if (st.check_id, st.target) in acked}
    out: dict[tuple[str, str], AcknowledgementRow] = {}
    for ack in acks:
        st = states.get((ack.check_id, ack.target))
        if st is not None and st.status == ack.status and aware(st.since) == aware(ack.since):
            out[(ack.check_id, ack.target)] = ack
    return out


# -- one target ---------------------------------------------------------------------------


def target_list(engine: Engine) -> list[tuple[str, str, str]]:
    """(target, kind, worst status) for every target, worst first then by name."""
    q = (select(col(StateRow.target), col(StateRow.target_kind), col(StateRow.status),
                func.count())
         .group_by(col(StateRow.target), col(StateRow.target_kind), col(StateRow.status)))
    worst: dict[tuple[str, str], str] = {}
    with engine.connect() as conn:
        for target, kind, status, _n in conn.execute(q):
            key = (str(target), str(kind))
            status = str(status)
            if key not in worst or rank(status) > rank(worst[key]):
                worst[key] = status
    return sorted(((t, k, s) for (t, k), s in worst.items()),
                  key=lambda x: (-rank(x[2]), x[0], x[1]))


def target_states(engine: Engine, target: str, kind: str | None = None) -> list[StateRow]:
    """Every check's current state on a target, worst first."""
    q = select(StateRow).where(col(StateRow.target) == target)
    if kind is not None:
        q = q.where(col(StateRow.target_kind) == kind)
    with Session(engine) as s:
        rows = list(s.execute(q).scalars().all())
    rows.sort(key=lambda r: (-rank(r.status), r.family, r.check_id))
    return rows


def evidence_bodies(engine: Engine, ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    q = select(col(EvidenceRow.id), col(EvidenceRow.body)).where(col(EvidenceRow.id).in_(wanted))
    with engine.connect() as conn:
        return {i: _json(body) for i, body in conn.execute(q) if i is not None}


def _json(body: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {"raw": body}
    return value if isinstance(value, dict) else {"value": value}


def target_history(engine: Engine, target: str, since: dt.datetime | None = None
                   ) -> list[dict[str, Any]]:
    """The target's result streaks: one span per (check, unchanged verdict), oldest first."""
    q = (select(col(ResultRow.check_id), col(ResultRow.family), col(ResultRow.status),
                col(ResultRow.summary), col(ResultRow.first_at), col(ResultRow.last_at),
                col(ResultRow.count), col(ResultRow.duration_ms_sum),
                col(ResultRow.duration_ms_max), col(ResultRow.duration_ms_last))
         .where(col(ResultRow.target) == target)
         .order_by(col(ResultRow.first_at), col(ResultRow.id)))
    if since is not None:
        q = q.where(col(ResultRow.last_at) >= since)
    # Days older than the raw retention: one span per check and day, coloured by the day's
    # worst status (a failure that day stays visible), with the day's counts as its summary.
    dq = (select(col(RollupRow.check_id), col(RollupRow.family), col(RollupRow.worst),
                 col(RollupRow.ok), col(RollupRow.warn), col(RollupRow.error),
                 col(RollupRow.fail), col(RollupRow.flips), col(RollupRow.first_at),
                 col(RollupRow.last_at), col(RollupRow.duration_ms_sum),
                 col(RollupRow.duration_ms_max))
          .where(col(RollupRow.target) == target).order_by(col(RollupRow.day)))
    if since is not None:
        dq = dq.where(col(RollupRow.last_at) >= since)
    with engine.connect() as conn:
        days = []
        for c, fam, worst, ok, warn, err, fail, flips, first, last, total, mx in conn.execute(dq):
            n = ok + warn + err + fail
            counts = ", ".join(f"{v} {k}" for k, v in (("ok", ok), ("warn", warn),
                                                        ("error", err), ("fail", fail)) if v)
            days.append({"check": c, "family": fam, "status": worst,
                         "summary": f"day: {counts}; {flips} changes", "first_at": aware(first),
                         "last_at": aware(last), "probes": int(n),
                         "avg_ms": (total / n) if n else 0.0, "max_ms": mx,
                         "last_ms": (total / n) if n else 0.0})
        raw = [{"check": c, "family": fam, "status": st, "summary": summ,
                "first_at": aware(first), "last_at": aware(last), "probes": int(n),
                "avg_ms": (total / n) if n else 0.0, "max_ms": mx, "last_ms": lst}
               for c, fam, st, summ, first, last, n, total, mx, lst in conn.execute(q)]
    return sorted(days, key=lambda d: d["first_at"]) + raw


def target_flips(engine: Engine, target: str, limit: int = 200) -> list[dict[str, Any]]:
    q = (select(col(FlipRow.at), col(FlipRow.check_id), col(FlipRow.old), col(FlipRow.new),
                col(FlipRow.reason))
         .where(col(FlipRow.target) == target).order_by(col(FlipRow.at).desc()).limit(limit))
    with engine.connect() as conn:
        return [{"at": aware(at), "check": c,
                 "change": f"{badge(old) if old else 'first seen'} → {badge(new)}",
                 "reason": reason} for at, c, old, new, reason in conn.execute(q)]


def target_gauges(engine: Engine, target: str) -> list[dict[str, Any]]:
    """Numeric gauges checks reported (latency, days left...) for the target."""
    q = (select(col(GaugeRow.check_id), col(GaugeRow.name), col(GaugeRow.value),
                col(GaugeRow.at)).where(col(GaugeRow.target) == target))
    with engine.connect() as conn:
        return [{"check": c, "gauge": n, "value": v, "at": aware(at)}
                for c, n, v, at in conn.execute(q)]


# -- sweeps -------------------------------------------------------------------------------


def recent_sweeps(engine: Engine, limit: int = 200) -> list[dict[str, Any]]:
    """The latest sweeps (oldest first) with their counts, for the fleet trend and "last run"."""
    q = (select(col(SweepRow.id), col(SweepRow.schedule), col(SweepRow.started_at),
                col(SweepRow.finished_at), col(SweepRow.state), col(SweepRow.total),
                col(SweepRow.ok), col(SweepRow.warn), col(SweepRow.fail), col(SweepRow.error))
         .order_by(col(SweepRow.id).desc()).limit(limit))
    with engine.connect() as conn:
        rows = [{"id": i, "schedule": sch, "started_at": aware(start),
                 "finished_at": aware(fin) if fin else None, "state": state, "total": total,
                 "ok": ok, "warn": warn, "fail": fail, "error": error}
                for i, sch, start, fin, state, total, ok, warn, fail, error in conn.execute(q)]
    rows.reverse()
    return rows


def score_rows(engine: Engine, where: Placement | None = None, today: dt.date | None = None
               ) -> list[tuple[str, str, str, str]]:
    """(target, kind, family, status) of every current verdict: what the score is made of.
    With `where`, a failure or warning a comply-or-explain explanation valid `today` covers
    reads `explained` (not scored), as in the reports."""
    q = select(col(StateRow.check_id), col(StateRow.target), col(StateRow.target_kind),
               col(StateRow.family), col(StateRow.status), col(StateRow.evidence_id))
    valid = explanations.active(explanation_store.in_force(engine),
                                today or dt.datetime.now(dt.UTC).date()) if where else {}
    with engine.connect() as conn:
        rows = list(conn.execute(q))
    out = []
    for check, target, kind, family, status, evidence_id in rows:
        if valid and where is not None and status in explanations.EXPLAINABLE_CHECK:
            mine = explanations.for_domain(valid, where.of(target, kind)[0])
            if mine and explanations.check_explanation(
                    check, status, _evidence(engine, evidence_id), mine) is not None:
                status = "explained"
        out.append((target, kind, family, status))
    return out


def _evidence(engine: Engine, evidence_id: int | None) -> dict[str, Any]:
    if not evidence_id:
        return {}
    with Session(engine) as s:
        row = s.get(EvidenceRow, evidence_id)
        return json.loads(row.body) if row else {}


def trend_rows(engine: Engine, domain: str, start: dt.datetime
               ) -> list[tuple[str, str, str, str, str, dt.datetime]]:
    """(check, target, kind, family, status, first_at) of the streaks and day rollups that
    may belong to `domain` since `start`, oldest first per pair: day rollups (older than the
    raw retention) precede every raw streak of their pair, and read as the status each day
    ended with from the day's first probe on."""
    rolled = (select(col(RollupRow.check_id), col(RollupRow.target),
                     col(RollupRow.target_kind), col(RollupRow.family),
                     col(RollupRow.last_status), col(RollupRow.first_at))
              .where(col(RollupRow.target).contains(domain), col(RollupRow.last_at) >= start)
              .order_by(col(RollupRow.day)))
    raw = (select(col(ResultRow.check_id), col(ResultRow.target), col(ResultRow.target_kind),
                  col(ResultRow.family), col(ResultRow.status), col(ResultRow.first_at))
           .where(col(ResultRow.target).contains(domain))
           .order_by(col(ResultRow.first_at)))
    with engine.connect() as conn:
        return [(c, t, k, f, s, aware(first)) for q in (rolled, raw)
                for c, t, k, f, s, first in conn.execute(q)]
