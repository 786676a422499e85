"""What the pages show, read from the store: pure assembly functions over small queries.

Speed is a feature here: the overview must stay within two seconds at 1,000 domains x the full
catalog. So it reads only the grouped `state` table (never the history) and builds its rows in
plain Python.

Everything takes the `Store` (its `dashboard` room runs the queries:
watchtower/store/dashboard.py) and returns plain dataclasses or lists of dicts, so each piece is
tested without Streamlit and the page scripts only lay them out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from watchtower.compliance import explanations
from watchtower.compliance.score import (
    Placement,
    SectionScore,
    bare_name,
    kinds_text,
    scope_text,
    section_scores,
)
from watchtower.model import Status
from watchtower.store import AcknowledgementRow, History, StateRow, Store, aware

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
    """One host and every target reached at it (a zone, its mail domain, its endpoint), with
    the worst verdict per family across them."""

    target: str  # the host's name
    kinds: list[str]
    tags: tuple[str, ...]
    cells: dict[str, Cell] = field(default_factory=dict)
    #: (target, kind) -> worst status of each target in the row, for opening one
    targets: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """What the host is seen as: `zone, mail domain, endpoint`."""
        return kinds_text(self.kinds)

    @property
    def worst(self) -> str:
        return max((c.worst for c in self.cells.values()), key=rank, default="ok")

    @property
    def problems(self) -> int:
        return sum(c.at_worst for c in self.cells.values() if c.worst in ("fail", "error"))

    @property
    def opens(self) -> tuple[str, str]:
        """The target a click opens: the row's worst, then the first seen."""
        return max(self.targets, key=lambda t: rank(self.targets[t]))

    def sort_key(self) -> tuple[int, int, str]:
        return (-rank(self.worst), -self.problems, self.target)


@dataclass(slots=True)
class Overview:
    families: list[str]  # every family in the store (for the filter)
    tags: list[str]  # every tag in the store (for the filter)
    shown_families: list[str]
    counts: dict[str, int]  # status -> number of check results, after the filters
    rows: list[OverviewRow]  # worst first, one per host
    total_targets: int  # before the filters

    @property
    def results(self) -> int:
        return sum(self.counts.values())

    @property
    def targets(self) -> int:
        """Targets in the rows shown (a row may hold several)."""
        return sum(len(r.targets) for r in self.rows)

    @property
    def scope_text(self) -> str:
        """`167 check results on 21 targets (12 hosts)`: each count named for what it is."""
        return scope_text(self.results, self.targets, len(self.rows))

    def table(self) -> list[dict[str, Any]]:
        """One dict per host: name, what it is seen as, worst, then one text cell per family."""
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


def load_state_groups(store: Store) -> list[StateGroup]:
    """The state table grouped by target, family and status (the database does the work)."""
    tag_cache: dict[str | None, tuple[str, ...]] = {}
    out = []
    for target, kind, family, status, n, tags in store.dashboard.state_groups():
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


def build_overview(groups: Iterable[StateGroup], filt: OverviewFilter = OverviewFilter(),
                   where: Placement | None = None) -> Overview:
    """Hosts x families, worst first, after the filters (pure; see module docstring). Targets
    reached at one host (`Placement.host`; without a fleet, the name without its port) are one
    row."""
    groups = list(groups)
    host = where.host if where is not None else (lambda target, _kind: bare_name(target))
    kept_groups = [g for g in groups if _wanted(g, filt)]
    rows: dict[str, OverviewRow] = {}
    for g in kept_groups:
        name = host(g.target, g.kind)
        row = rows.get(name)
        if row is None:
            row = rows[name] = OverviewRow(name, [], ())
        _add(row, g)
    kept = [r for r in rows.values() if not filt.statuses or r.worst in filt.statuses]
    kept.sort(key=OverviewRow.sort_key)
    counts = dict.fromkeys(STATUS_ORDER, 0)
    kept_names = {r.target for r in kept}
    for g in kept_groups:
        if host(g.target, g.kind) in kept_names:
            counts[g.status] = counts.get(g.status, 0) + g.count
    families = {g.family for g in groups}
    shown = sorted(set(filt.families) & families) if filt.families else sorted(families)
    return Overview(sorted(families), sorted({t for g in groups for t in g.tags}), shown,
                    counts, kept, len({(g.target, g.kind) for g in groups}))


def _wanted(g: StateGroup, filt: OverviewFilter) -> bool:
    needle = filt.search.strip().lower()
    return ((not filt.families or g.family in filt.families)
            and (not filt.tags or bool(set(filt.tags).intersection(g.tags)))
            and (not needle or needle in g.target.lower()))


def _add(row: OverviewRow, g: StateGroup) -> None:
    """Count one group into its host's row: the family's cell, the target, its kind, tags."""
    key = (g.target, g.kind)
    if g.kind not in row.kinds:
        row.kinds.append(g.kind)
    if key not in row.targets or rank(g.status) > rank(row.targets[key]):
        row.targets[key] = g.status
    row.tags = tuple(dict.fromkeys((*row.tags, *g.tags)))
    cell = row.cells.get(g.family)
    if cell is None:
        row.cells[g.family] = Cell(g.status, g.count, g.count)
        return
    cell.total += g.count
    if rank(g.status) > rank(cell.worst):
        cell.worst, cell.at_worst = g.status, g.count
    elif g.status == cell.worst:
        cell.at_worst += g.count


def overview(store: Store, filt: OverviewFilter = OverviewFilter(),
             where: Placement | None = None) -> Overview:
    return build_overview(load_state_groups(store), filt, where)


# -- compliance ---------------------------------------------------------------------------


def compliance_scores(store: Store, where: Placement, planned: Iterable[tuple[str, str, str]],
                      day: dt.date) -> list[SectionScore]:
    """The Compliance page's scores: every current verdict as the reports score it (an
    explanation valid on `day` makes a failure `explained`), a planned family without a result
    `not run`; lowest first."""
    return section_scores(explanations.scored_statuses(store, where, day), where, planned)


# -- what changed -------------------------------------------------------------------------


@dataclass(slots=True)
class Changes:
    since: dt.datetime
    new_problems: int = 0  # became fail or error
    resolved: int = 0  # left fail or error
    first_seen: int = 0  # a check seen for the first time
    other: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # newest first, capped


def changes_since(store: Store, since: dt.datetime, limit: int = 300) -> Changes:
    """Status flips since a moment (the `flip` table, indexed by time)."""
    out = Changes(since)
    for at, target, check, old, new, reason in store.dashboard.flips_since(since):
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
            out.rows.append({"at": at, "target": target, "check": check,
                             "change": f"{ICON.get(old, '⚪')} {old} → "
                                       f"{ICON.get(new, '⚪')} {new}",
                             "reason": reason})
    return out


def problems(store: Store, filt: OverviewFilter = OverviewFilter(), limit: int = 500,
             statuses: Sequence[str] = ("fail", "error")) -> list[dict[str, Any]]:
    """The current problems, worst and oldest first, with whether someone acknowledged them."""
    needle = filt.search.strip().lower()
    rows: list[dict[str, Any]] = []
    for st in store.dashboard.problem_states(statuses, filt.families):
        if filt.tags and not set(filt.tags).intersection(_tags(st.tags)):
            continue
        if needle and needle not in st.target.lower():
            continue
        rows.append({"status": st.status, "target": st.target, "kind": st.target_kind,
                     "family": st.family, "check": st.check_id, "summary": st.summary,
                     "since": st.since})
    rows.sort(key=lambda r: (-rank(r["status"]), r["since"], r["target"], r["check"]))
    rows = rows[:limit]
    acks = current_acks(store, [(r["check"], r["target"]) for r in rows])
    for r in rows:
        ack = acks.get((r["check"], r["target"]))
        r["acknowledged"] = f"{ack.by}: {ack.note}".rstrip(": ") if ack else ""
        r["status"] = badge(r["status"])
    return rows


# -- acknowledgements ---------------------------------------------------------------------


def current_acks(store: Store, keys: Sequence[tuple[str, str]]
                 ) -> dict[tuple[str, str], AcknowledgementRow]:
    """Acknowledgements that still apply: same status and same episode (`since`) as now."""
    return store.dashboard.current_acks(keys)


# -- one target ---------------------------------------------------------------------------


def target_list(store: Store) -> list[tuple[str, str, str]]:
    """(target, kind, worst status) for every target, worst first then by name."""
    worst: dict[tuple[str, str], str] = {}
    for target, kind, status in store.dashboard.target_statuses():
        key = (target, kind)
        if key not in worst or rank(status) > rank(worst[key]):
            worst[key] = status
    return sorted(((t, k, s) for (t, k), s in worst.items()),
                  key=lambda x: (-rank(x[2]), x[0], x[1]))


def target_states(store: Store, target: str, kind: str | None = None) -> list[StateRow]:
    """Every check's current state on a target, worst first."""
    rows = store.dashboard.target_states(target, kind)
    rows.sort(key=lambda r: (-rank(r.status), r.family, r.check_id))
    return rows


def evidence_bodies(store: Store, ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
    return store.evidence_bodies(list(ids))


def target_history(store: Store, target: str, since: dt.datetime | None = None
                   ) -> list[dict[str, Any]]:
    """The target's timeline: one span per (check, unchanged verdict), oldest first."""
    return timeline(store.read_history([target], since=since))


def timeline(history: History) -> list[dict[str, Any]]:
    """History as the timeline draws it (pure). Days older than the raw retention come first:
    one span per check and day, coloured by the day's worst status (a failure that day stays
    visible), with the day's counts as its summary; then the raw streaks."""
    days = []
    for d in history.days:
        n = d.probes
        counts = ", ".join(f"{v} {k}" for k, v in (("ok", d.ok), ("warn", d.warn),
                                                    ("error", d.error), ("fail", d.fail)) if v)
        avg = (d.duration_ms_sum / n) if n else 0.0
        days.append({"check": d.check_id, "family": d.family, "status": d.worst,
                     "summary": f"day: {counts}; {d.flips} changes",
                     "first_at": aware(d.first_at), "last_at": aware(d.last_at),
                     "probes": int(n), "avg_ms": avg, "max_ms": d.duration_ms_max,
                     "last_ms": avg})
    raw = [{"check": r.check_id, "family": r.family, "status": r.status, "summary": r.summary,
            "first_at": aware(r.first_at), "last_at": aware(r.last_at), "probes": int(r.count),
            "avg_ms": (r.duration_ms_sum / r.count) if r.count else 0.0,
            "max_ms": r.duration_ms_max, "last_ms": r.duration_ms_last}
           for r in history.streaks]
    return days + raw


def target_flips(store: Store, target: str, limit: int = 200) -> list[dict[str, Any]]:
    return [{"at": at, "check": c,
             "change": f"{badge(old) if old else 'first seen'} → {badge(new)}",
             "reason": reason}
            for at, _target, c, old, new, reason in store.dashboard.target_flips(target, limit)]


def target_gauges(store: Store, target: str) -> list[dict[str, Any]]:
    """Numeric gauges checks reported (latency, days left...) for the target."""
    return [{"check": c, "gauge": n, "value": v, "at": at}
            for c, n, v, at in store.dashboard.target_gauges(target)]


# -- sweeps -------------------------------------------------------------------------------


def recent_sweeps(store: Store, limit: int = 200, include_adhoc: bool = True
                  ) -> list[dict[str, Any]]:
    """The latest sweeps (oldest first) with their counts, for the fleet trend and "last run";
    scheduled ones only unless `include_adhoc`."""
    rows = store.dashboard.recent_sweeps(limit, None if include_adhoc else ["scheduled"])
    rows.reverse()
    return rows


def trend_rows(store: Store, domain: str, start: dt.datetime, include_adhoc: bool = False
               ) -> list[tuple[str, str, str, str, str, dt.datetime]]:
    """(check, target, kind, family, status, first_at) of the history that may belong to
    `domain` since `start`, oldest first per pair: day rollups (older than the raw retention)
    precede every raw streak of their pair, and read as the status each day ended with from
    the day's first probe on. Ad-hoc runs are left out unless asked, as in the reports."""
    history = store.read_history(containing=domain, since=start, include_adhoc=include_adhoc)
    return ([(d.check_id, d.target, d.target_kind, d.family, d.last_status, aware(d.first_at))
             for d in history.days]
            + [(r.check_id, r.target, r.target_kind, r.family, r.status, aware(r.first_at))
               for r in history.streaks])
