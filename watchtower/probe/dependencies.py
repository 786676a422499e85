"""Dependencies between checks: one root cause is one `fail`, not a storm of findings.

A check declares the checks it stands on (`CheckMeta.needs`): the web checks stand on
`web.tls.certificate` (a page behind a certificate clients refuse says nothing about its
headers), the fediverse checks on `fedi.health`, which stands on the certificate of the
service's endpoint, the storage checks and backups on `storage.health` of their Garage cluster.
A sweep runs prerequisites first, in stages (`stages`): a check's stage is one more than its
deepest prerequisite's. When a prerequisite's result `blocks` (by default: `fail` or `error`),
its dependents on that target are not run: each is an `error` whose `cause` names the root
failure (the prerequisite's own cause when it was itself not run), so the score leaves them out
and alerting lists them under the root's one incident.

A prerequisite runs on the dependent's own target when it applies there, else on the target the
dependent is reached through (`stands_on`): one sharing a URL host (a Mastodon service and the
endpoint of its `base_url`; a backup and the Garage cluster of its `s3_endpoint`), else the zone
its names live under (the longest match: a zone that is not served leaves its endpoints, mail
domain and mail hosts unjudged, under dns.ns.count or dns.ns.authoritative). A dependent
whose prerequisite has no such target runs as usual. A prerequisite the sweep did not plan (a
`--only` run, a scheduler group of another interval) is added to its stage and stored like any
result; one the fleet disabled is not, and its dependents run as usual.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

from watchtower.config import Fleet
from watchtower.model import Cause, Result, Target, TargetKind, utcnow
from watchtower.probe.api import Check
from watchtower.probe.runner import Job, error_result, plan_jobs

#: The attributes of a target's spec that name a URL it is reached at.
URL_ATTRIBUTES = ("base_url", "url", "s3_endpoint")
Pair = tuple[str, str]  # (check id, target key)


class DependencyError(ValueError):
    """The registered checks declare an unknown prerequisite or a cycle (a bug of a check)."""


def depth(check_id: str, checks: Mapping[str, Check], seen: tuple[str, ...] = ()) -> int:
    """The stage of a check: 0 without prerequisites, else one more than its deepest one."""
    if check_id in seen:
        raise DependencyError(f"dependency cycle: {' -> '.join((*seen, check_id))}")
    needs = checks[check_id].meta.needs
    for need in needs:
        if need not in checks:
            raise DependencyError(f"{check_id} needs {need}, which is not a registered check")
    return max((1 + depth(n, checks, (*seen, check_id)) for n in needs), default=0)


def own_keys(target: Target) -> list[str]:
    """What a target is found by: the URL hosts (host[:port], lower case) it is reached at,
    and for a zone or mail domain `domain:<name>`."""
    out = []
    for attr in URL_ATTRIBUTES:
        value = getattr(target.spec, attr, None)
        if isinstance(value, str) and "://" in value:
            out.append(urlsplit(value).netloc.lower())
    if target.kind in (TargetKind.ZONE, TargetKind.MAIL_DOMAIN):
        out.append(f"domain:{target.name.lower().rstrip('.')}")
    return out


def stands_on(target: Target) -> list[str]:
    """What a target is reached through, most specific first: its own keys, then the domains
    its names live under (`social.alpha.test` -> `domain:social.alpha.test`,
    `domain:alpha.test`; the top label alone is never a domain of the fleet's)."""
    keys = own_keys(target)
    names = [k.removeprefix("domain:") if k.startswith("domain:")
             else urlsplit(f"//{k}").hostname or "" for k in keys]
    host = getattr(target.spec, "host", None)
    if isinstance(host, str):
        names.append(host.lower().rstrip("."))
    for name in names:
        labels = name.split(".")
        keys += [f"domain:{'.'.join(labels[i:])}" for i in range(len(labels) - 1)]
    return list(dict.fromkeys(keys))


class TargetIndex:
    """Finds the target a prerequisite runs on for a dependent's target."""

    def __init__(self, targets: Iterable[Target]) -> None:
        self.by_key: dict[str, list[Target]] = {}
        #: Every target by its own key (`kind:name`).
        self.targets: dict[str, Target] = {}
        for t in targets:
            self.targets[t.key] = t
            for key in own_keys(t):
                self.by_key.setdefault(key, []).append(t)

    def prerequisite(self, need: Check, target: Target) -> Target | None:
        if need.applies(target):
            return target
        for key in stands_on(target):
            for candidate in self.by_key.get(key, ()):
                if candidate.key != target.key and need.applies(candidate):
                    return candidate
        return None


_indexes: dict[int, TargetIndex] = {}
_indexes_lock = threading.Lock()


def index_of(fleet: Fleet) -> TargetIndex:
    """The fleet's targets indexed, built once per Fleet object: a fleet is not changed once
    loaded (a reload makes a new one), and an agent runs a small sweep per job, whose plan
    would otherwise index every target of a 1,000-domain fleet each time (~50 ms at 300
    domains). The entry goes with its fleet."""
    key = id(fleet)
    with _indexes_lock:
        found = _indexes.get(key)
    if found is None:
        found = TargetIndex(fleet.targets())
        with _indexes_lock:
            if key not in _indexes:
                _indexes[key] = found
                weakref.finalize(fleet, _indexes.pop, key, None)
    return found


class Prerequisites:
    """The staged plan of one sweep and the outcomes of its prerequisites, as they arrive."""

    def __init__(self, fleet: Fleet, jobs: list[Job], checks: Mapping[str, Check]) -> None:
        self.checks = checks
        self.index = index_of(fleet)
        self.edges: dict[Pair, list[tuple[Check, Target]]] = {}
        #: Per prerequisite pair that blocks: the root cause and what it said.
        self.blocking: dict[Pair, tuple[Cause, str]] = {}
        self.stages = self._plan(fleet, jobs)

    @property
    def jobs(self) -> list[Job]:
        """Every job of the sweep, prerequisites added, in stage order."""
        return [j for stage in self.stages for j in stage]

    def _plan(self, fleet: Fleet, jobs: list[Job]) -> list[list[Job]]:
        """Stages: each prerequisite at its depth; every other job (dependents, and checks
        nothing stands on) in the last stage, so a stage waits only for the prerequisites (a
        slow scan that nothing stands on does not hold the sweep up)."""
        planned = {(j.check.meta.id, j.target.key) for j in jobs}
        todo, order = deque(jobs), []
        while todo:
            job = todo.popleft()
            order.append(job)
            edges = self.edges[(job.check.meta.id, job.target.key)] = []
            for need_id in job.check.meta.needs:
                need = self.checks[need_id]
                on = self.index.prerequisite(need, job.target)
                if on is None:
                    continue
                edges.append((need, on))
                if (need_id, on.key) not in planned:
                    planned.add((need_id, on.key))
                    todo.extend(plan_jobs(fleet, {need_id: need}, [on]))
        needed = {(n.meta.id, on.key) for edges in self.edges.values() for n, on in edges}
        depths = {cid: depth(cid, self.checks) for cid in {j.check.meta.id for j in order}}
        last = max(depths.values(), default=0)
        staged: dict[int, list[Job]] = {}
        for job in order:
            key = (job.check.meta.id, job.target.key)
            staged.setdefault(depths[key[0]] if key in needed else last, []).append(job)
        return [staged[level] for level in sorted(staged)]

    def note(self, result: Result) -> None:
        """Remember a probed result that blocks its dependents (only those: memory stays
        small)."""
        check = self.checks.get(result.check)
        if check is not None and check.blocks(result):
            root = Cause(result.check, result.target.name)
            self.blocking[(result.check, result.target.key)] = (root, result.summary)

    def cause_of(self, job: Job) -> tuple[Cause, str] | None:
        """The root failure that leaves this job nothing to judge, with its summary."""
        for need, on in self.edges.get((job.check.meta.id, job.target.key), ()):
            found = self.blocking.get((need.meta.id, on.key))
            if found is not None:
                return found
        return None


def caused_result(job: Job, cause: Cause, summary: str) -> Result:
    """The `error` of a check not run because its prerequisite failed: the root cause named in
    the summary and kept as `cause`."""
    reason = f"not judged: {cause} failed ({summary})"[:500]
    result = error_result(job, reason, "prerequisite", None, utcnow())
    result.cause = cause
    return result


def run_staged(plan: Prerequisites, run: Callable[[list[Job]], Iterable[Result]],
               stopped: Callable[[], bool] = lambda: False,
               between: Callable[[], object] = lambda: None) -> Iterator[Result]:
    """Run the plan stage by stage (`run` runs one stage's jobs), yielding every result: the
    probes' and the caused errors of the jobs a failed prerequisite leaves unjudged.
    `between` runs after each stage (the sweep stores what it holds: a stage may be followed
    by a long one)."""
    for index, stage in enumerate(plan.stages):
        if index:
            between()
        if stopped():
            return
        runnable = []
        for job in stage:
            blocked = plan.cause_of(job)
            if blocked is None:
                runnable.append(job)
                continue
            # not run: it blocks its own dependents with the same root and the root's words
            plan.blocking[(job.check.meta.id, job.target.key)] = blocked
            yield caused_result(job, *blocked)
        for result in run(runnable) if runnable else ():
            plan.note(result)
            yield result
