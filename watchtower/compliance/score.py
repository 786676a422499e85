"""The one compliance score, in the spirit of internet.nl's percentages: the report and the
dashboard both compute it here, so a customer's report and the operator's dashboard cannot show
different scores for the same data.

The rule, and why:
- A result scores `ok` 100 %, `warn` 50 % (recommended, not required), `fail` 0 %.
- `error` is left out: the probe could not run, which says nothing about compliance (the
  catalog's rule). It is counted and shown apart; a group whose results all errored has no
  score (None), not 0 %.
- `explained` is left out too: a failure or warning an operator explained ("comply or
  explain", valid that day) is counted apart and not scored as a failure.
- Results are grouped the way a customer thinks of them (`FAMILY_GROUPS`: the fediverse and
  Matrix checks are "federation", hosts belong with drift), and placed in a *section*: the
  declared domain (zone or mail domain) a target lives under, found from the target's own host
  name (a service called `social` at `https://social.alpha.test/` belongs to `alpha.test`), or
  the host it is.
- Score = mean of the per-result scores, rounded to a whole percent; a section's overall score
  is the mean over all its results (a group with more checks weighs more, as in internet.nl
  where each test is one point).
- A group says what it is when it has no score (`Tally.state`): `not run` when checks of it
  apply to the section's targets but none has a result, `not judged` when every result is an
  error (with their count). Never 100 % for what nobody looked at.
- A colour that sums a report or a page up follows its *worst* section (`lowest`), not the
  mean: a headline 91 % is not green while one domain is at 0 %.
- Targets are shown by the host they are reached at (`Placement.host`): a zone, the mail
  domain of the same name and its endpoint `alpha.test:443` are one row.

Pure: rows come from the store, targets from the fleet.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from watchtower.config import Endpoint, MailHost, Service
from watchtower.model import Status, Target, TargetKind
from watchtower.parsers import ParseError
from watchtower.parsers.domains import organizational_domain

WEIGHT: dict[str, float] = {"ok": 1.0, "warn": 0.5, "fail": 0.0}
#: What a tally is (`Tally.state`).
SCORED, NOT_JUDGED, NOT_RUN = "scored", "not judged", "not run"

#: Check families grouped the way a customer thinks of them (internet.nl-style categories).
FAMILY_GROUPS: dict[str, str] = {
    "mail": "mail", "dns": "dns", "web": "web", "fedi": "federation", "matrix": "federation",
    "storage": "storage", "backup": "storage", "drift": "drift", "host": "drift",
    "heartbeat": "drift",
}
GROUP_ORDER = ("mail", "dns", "web", "federation", "storage", "drift")
GROUP_TITLES = {"mail": "Mail", "dns": "DNS", "web": "Web", "federation": "Federation",
                "storage": "Storage & backups", "drift": "Drift & hosts"}


def family_group(family: str) -> str:
    return FAMILY_GROUPS.get(family, family)


def group_rank(group: str) -> tuple[int, str]:
    return (GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER), group)


@dataclass(slots=True)
class Tally:
    """Verdicts counted by status; `score` is the percentage of the judged ones."""

    ok: int = 0
    warn: int = 0
    fail: int = 0
    error: int = 0
    #: failures and warnings a valid comply-or-explain explanation covers: counted, not
    #: scored (watchtower.compliance.explanations).
    explained: int = 0

    def add(self, status: Status | str, n: int = 1) -> None:
        name = str(status)
        setattr(self, name, getattr(self, name) + n)

    @property
    def judged(self) -> int:
        return self.ok + self.warn + self.fail

    @property
    def percent(self) -> float | None:
        """The unrounded score, or None when nothing was judged."""
        if self.judged == 0:
            return None
        return 100.0 * (self.ok * WEIGHT["ok"] + self.warn * WEIGHT["warn"]
                        + self.fail * WEIGHT["fail"]) / self.judged

    @property
    def score(self) -> int | None:
        value = self.percent
        return None if value is None else round(value)

    @property
    def total(self) -> int:
        return self.judged + self.error + self.explained

    @property
    def state(self) -> str:
        """`scored`; `not judged` (only errors, or only explained results); `not run` (no
        result at all: its checks apply but did not run)."""
        if self.judged:
            return SCORED
        return NOT_JUDGED if self.total else NOT_RUN

    def text(self) -> str:
        """The score as people read it: `83%`, `not judged (2 errors)`, `not run`."""
        if self.state == SCORED:
            return f"{self.score}%"
        if self.state == NOT_RUN:
            return NOT_RUN
        why = (f"{self.error} error{'s' if self.error != 1 else ''}" if self.error
               else f"{self.explained} explained")
        return f"{NOT_JUDGED} ({why})"

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "warn": self.warn, "fail": self.fail, "error": self.error,
                "explained": self.explained}


def tally(statuses: Iterable[Status | str]) -> Tally:
    out = Tally()
    for status in statuses:
        out.add(status)
    return out


_KIND_ORDER = {str(k): i for i, k in enumerate(TargetKind)}


def kinds_text(kinds: Iterable[str]) -> str:
    """What a name is seen as, in the fleet's order of kinds: `zone, mail domain, endpoint`."""
    unique = sorted(set(kinds), key=lambda k: (_KIND_ORDER.get(k, len(_KIND_ORDER)), k))
    return ", ".join(k.replace("_", " ") for k in unique)


def counted(count: int, word: str) -> str:
    """`1 target`, `21 targets`."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def scope_text(results: int, targets: int, names: int) -> str:
    """Counts named for what they count: `167 check results on 21 targets (12 names)` (a name
    is a row: the targets reached at one host, as `Placement.host` groups them)."""
    return (f"{counted(results, 'check result')} on {counted(targets, 'target')} "
            f"({counted(names, 'name')})")


# -- where a target belongs ------------------------------------------------------------------


def host_of(target: Target) -> str:
    """The DNS host name a target is reached at (its URL's host for services and endpoints)."""
    spec = target.spec
    if isinstance(spec, Service):
        host = urlsplit(spec.base_url).hostname or target.name
    elif isinstance(spec, Endpoint):
        host = urlsplit(spec.url).hostname or target.name
    elif isinstance(spec, MailHost):
        host = spec.host
    else:
        host = bare_name(target.name)
    return host.lower().rstrip(".")


def bare_name(name: str) -> str:
    """A target name without its port (endpoints are named host:port) or trailing dot."""
    return (name.rsplit(":", 1)[0] if name.count(":") == 1 else name).strip(".").lower()


def domain_of(host: str, domains: Iterable[str] = ()) -> str:
    """The declared domain `host` lives under (the longest match), else its registrable
    domain by the Public Suffix List, else the name itself."""
    host = bare_name(host)
    best = max((d for d in domains if host == d or host.endswith("." + d)), key=len,
               default=None)
    if best is not None:
        return best
    if "." not in host:
        return host
    try:
        return organizational_domain(host)
    except ParseError:
        return host


#: Target kinds that are a section of their own (not under a domain): a NixOS host, and the
#: jobs watched by their traces (a backup bucket, a push heartbeat).
OWN_SECTIONS = {str(TargetKind.HOST): "host", str(TargetKind.BACKUP): "job",
                str(TargetKind.HEARTBEAT): "job"}
#: The kinds of section, in the order reports list them.
SECTION_KINDS = ("domain", "host", "job")


@dataclass(frozen=True, slots=True)
class Placement:
    """Which section (a domain, or a host) each target of a fleet belongs to."""

    sections: Mapping[tuple[str, str], tuple[str, str]]  # (name, kind) -> (section, kind)
    domains: frozenset[str]
    hosts: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (name, kind) -> host

    def host(self, target: str, kind: str) -> str:
        """The row a target is shown in: the DNS host it is reached at (a service named
        `social` at https://social.alpha.test/ shares `social.alpha.test` with its endpoint),
        or, for a target the fleet no longer has, its name without a port."""
        return self.hosts.get((target, kind)) or bare_name(target)

    def of(self, target: str, kind: str) -> tuple[str, str]:
        found = self.sections.get((target, kind))
        if found is not None:
            return found
        own = OWN_SECTIONS.get(kind)
        if own is not None:
            return target, own
        return domain_of(target, self.domains), "domain"


def placement(targets: Iterable[Target]) -> Placement:
    """Place every target: zones and mail domains are their own domain; a host is its own section,
    so is a backup or heartbeat job; everything else goes under the declared domain its host name
    lives under."""
    targets = list(targets)
    domains = frozenset(t.name for t in targets
                        if t.kind in (TargetKind.ZONE, TargetKind.MAIL_DOMAIN))
    out: dict[tuple[str, str], tuple[str, str]] = {}
    hosts: dict[tuple[str, str], str] = {}
    for t in targets:
        key = (t.name, str(t.kind))
        hosts[key] = t.name if str(t.kind) in OWN_SECTIONS else host_of(t)
        own = OWN_SECTIONS.get(str(t.kind))
        if own is not None:
            out[key] = (t.name, own)
        elif t.kind in (TargetKind.ZONE, TargetKind.MAIL_DOMAIN):
            out[key] = (t.name, "domain")
        else:
            out[key] = (domain_of(host_of(t), domains), "domain")
    return Placement(out, domains, hosts)


# -- scores of sections ----------------------------------------------------------------------


@dataclass(slots=True)
class SectionScore:
    """A section's verdicts: overall and per group."""

    name: str
    kind: str  # domain | host | job
    overall: Tally = field(default_factory=Tally)
    groups: dict[str, Tally] = field(default_factory=dict)

    def add(self, family: str, status: Status | str) -> None:
        self.overall.add(status)
        self.groups.setdefault(family_group(family), Tally()).add(status)

    def expect(self, family: str) -> None:
        """Checks of this family apply here: without a result the group reads `not run`."""
        self.groups.setdefault(family_group(family), Tally())

    @property
    def score(self) -> int | None:
        return self.overall.score

    def ordered_groups(self) -> dict[str, Tally]:
        return {g: self.groups[g] for g in sorted(self.groups, key=group_rank)}


def section_scores(rows: Iterable[tuple[str, str, str, str]], where: Placement,
                   expected: Iterable[tuple[str, str, str]] = ()) -> list[SectionScore]:
    """From (target, kind, family, status) rows to one score per section, lowest score first
    (sections with no judged result last). `expected` (target, kind, family) are the pairs a
    sweep plans (watchtower.probe.runner.planned_families): a group of them with no row shows
    as `not run` in its section."""
    by_section: dict[tuple[str, str], SectionScore] = {}

    def section(target: str, kind: str) -> SectionScore:
        name, skind = where.of(target, kind)
        return by_section.setdefault((name, skind), SectionScore(name, skind))

    for target, kind, family, status in rows:
        section(target, kind).add(family, status)
    for target, kind, family in expected:
        section(target, kind).expect(family)
    out = list(by_section.values())
    out.sort(key=lambda s: (s.overall.percent if s.overall.percent is not None else 101.0,
                            s.kind != "domain", s.name))
    return out


class _Named(Protocol):
    name: str


_S = TypeVar("_S", bound=_Named)


def lowest(sections: Iterable[_S], tally_of: Callable[[_S], Tally]) -> _S | None:
    """The section with the lowest score (None when none has one): what a summary's colour
    follows, so one domain at 0 % is never hidden behind a green mean. `tally_of` reads a
    section's overall tally (`SectionScore.overall`, the report's `Section.counts`)."""
    scored = [(percent, s.name, i, s) for i, s in enumerate(sections)
              if (percent := tally_of(s).percent) is not None]
    return min(scored, key=lambda item: item[:3])[3] if scored else None


def score_table(scores: list[SectionScore]) -> tuple[list[str], list[dict[str, Any]]]:
    """Groups shown (in order) and one row per section: `score` and each group as a whole
    percentage (None: not applicable, or no score), the results it counts, and `unscored`
    naming what a blank or a score leaves out (`Mail not run; Drift & hosts not judged (1
    error)`, or `Web: 2 not judged`)."""
    groups = sorted({g for s in scores for g in s.groups}, key=group_rank)
    rows = []
    for s in scores:
        row: dict[str, Any] = {"domain": s.name, "score": s.score}
        for g in groups:
            value = s.groups.get(g)
            row[g] = None if value is None else value.score
        row["results"] = s.overall.total
        row["unscored"] = unscored(s)
        rows.append(row)
    return groups, rows


def unscored(section: SectionScore) -> str:
    """What a section's scores leave out, per group: `not run`, `not judged (2 errors)`, or
    how many results of a scored group are not judged."""
    notes = []
    for group, tally_ in section.ordered_groups().items():
        title = GROUP_TITLES.get(group, group)
        if tally_.state != SCORED:
            notes.append(f"{title} {tally_.text()}")
        elif tally_.error:
            notes.append(f"{title}: {tally_.error} not judged")
    return "; ".join(notes)


# -- the trend -------------------------------------------------------------------------------


def replay(streaks: Mapping[tuple[str, str], list[tuple[dt.datetime, str, str]]],
           start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Scores once a day from `start`, and at `end`, from each (check, target)'s streaks
    `(first_at, family, status)` sorted by first_at: at each instant the streak that had
    started by then holds. Points per group and `overall`, as whole percentages."""
    times = []
    t = start
    while t < end:
        times.append(t)
        t += dt.timedelta(days=1)
    times.append(end)
    points = []
    for at in times:
        section = SectionScore("", "domain")
        for spans in streaks.values():
            current = None
            for first, family, status in spans:
                if first > at:
                    break
                current = (family, status)
            if current is not None:
                section.add(*current)
        if section.score is None:
            continue
        points.append({"at": at, "family": "overall", "score": section.score})
        for group, counted in section.ordered_groups().items():
            if counted.score is not None:
                points.append({"at": at, "family": group, "score": counted.score})
    return points


def trend_streaks(rows: Iterable[tuple[str, str, str, str, str, dt.datetime]], domain: str,
                  where: Placement) -> dict[tuple[str, str], list[tuple[dt.datetime, str, str]]]:
    """(check, target, kind, family, status, first_at) rows, oldest first, kept when they
    belong to `domain`, as the streaks `replay` reads."""
    streaks: dict[tuple[str, str], list[tuple[dt.datetime, str, str]]] = defaultdict(list)
    for check, target, kind, family, status, first in rows:
        if where.of(target, kind) == (domain, "domain"):
            streaks[(check, target)].append((first, family, status))
    return streaks
