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
dependent is reached through: one sharing a URL host (a Mastodon service and the endpoint of its
`base_url`; a backup and the Garage cluster of its `s3_endpoint`). A dependent whose prerequisite
has no such target runs as usual. A prerequisite the sweep did not plan (a `--only` run, a
scheduler group of another interval) is added to its stage and stored like any result; one the
fleet disabled is not, and its dependents run as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

from watchtower.config import Fleet
from watchtower.model import Cause, Result, Target, utcnow
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


def hosts_of(target: Target) -> set[str]:
    """The URL hosts (host[:port], lower case) a target is reached at."""
    out = set()
    for attr in URL_ATTRIBUTES:
        value = getattr(target.spec, attr, None)
        if isinstance(value, str) and "://" in value:
            out.add(urlsplit(value).netloc.lower())
    return out


class TargetIndex:
    """Finds the target a prerequisite runs on for a dependent's target."""

    def __init__(self, targets: Iterable[Target]) -> None:
        self.by_host: dict[str, list[Target]] = {}
        for t in targets:
            for host in sorted(hosts_of(t)):
                self.by_host.setdefault(host, []).append(t)

    def prerequisite(self, need: Check, target: Target) -> Target | None:
        if need.applies(target):
            return target
        for host in sorted(hosts_of(target)):
            for candidate in self.by_host.get(host, ()):
                if candidate.key != target.key and need.applies(candidate):
                    return candidate
        return None


class Prerequisites:
    """The staged plan of one sweep and the outcomes of its prerequisites, as they arrive."""

    def __init__(self, fleet: Fleet, jobs: list[Job], checks: Mapping[str, Check]) -> None:
        self.checks = checks
        self.index = TargetIndex(fleet.targets())
        self.edges: dict[Pair, list[tuple[Check, Target]]] = {}
        #: Per prerequisite pair that blocks: the root cause and what it said.
        self.blocking: dict[Pair, tuple[Cause, str]] = {}
        self.stages = self._plan(fleet, jobs)

    @property
    def jobs(self) -> list[Job]:
        """Every job of the sweep, prerequisites added, in stage order."""
        return [j for stage in self.stages for j in stage]

    def _plan(self, fleet: Fleet, jobs: list[Job]) -> list[list[Job]]:
        planned = {(j.check.meta.id, j.target.key) for j in jobs}
        todo = list(jobs)
        staged: dict[int, list[Job]] = {}
        while todo:
            job = todo.pop(0)
            staged.setdefault(depth(job.check.meta.id, self.checks), []).append(job)
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
               stopped: Callable[[], bool] = lambda: False) -> Iterator[Result]:
    """Run the plan stage by stage (`run` runs one stage's jobs), yielding every result: the
    probes' and the caused errors of the jobs a failed prerequisite leaves unjudged."""
    for stage in plan.stages:
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
