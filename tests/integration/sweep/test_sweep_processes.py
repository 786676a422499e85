"""Large sweeps split over worker processes: same results as one process, nothing lost when
a worker dies. On the session's demo lab (3 domains, its faults)."""

from __future__ import annotations

import os
import signal
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from watchtower.config import Fleet
from watchtower.model import Result
from watchtower.probe import workers
from watchtower.probe.runner import plan_jobs
from watchtower.probe.sweep import run_sweep, select_checks
from watchtower.probe.workers import ProcessRunner, shard


def _with_processes(fleet: Fleet, processes: int) -> Fleet:
    return fleet.model_copy(update={"probe": fleet.probe.model_copy(
        update={"sweep_processes": processes})})


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo lab has ~170 probes, under the threshold that keeps small sweeps at home."""
    monkeypatch.setattr(workers, "MIN_JOBS", 10)


def test_shards_keep_a_domain_together_and_the_plan_order(lab_fleet: Fleet) -> None:
    jobs = plan_jobs(lab_fleet, select_checks())
    parts = shard(jobs, 2)
    assert sum(len(p) for p in parts) == len(jobs) and len(parts) == 2
    owner = {}
    for i, part in enumerate(parts):
        for job in part:
            owner.setdefault(workers.locality(job.target), set()).add(i)
    assert all(len(v) == 1 for v in owner.values()), owner
    order = {id(j): n for n, j in enumerate(jobs)}
    for part in parts:
        assert [order[id(j)] for j in part] == sorted(order[id(j)] for j in part)


def test_two_workers_give_the_results_of_one_process(lab_fleet: Fleet,
                                                     small_threshold: None) -> None:
    checks = select_checks(["dns", "mail", "web"])
    alone = run_sweep(_with_processes(lab_fleet, 1), None, checks)
    split = run_sweep(_with_processes(lab_fleet, 2), None, checks)
    assert alone.processes == 1 and split.processes == 2
    # two workers for the whole sweep, every stage (prerequisites first:
    # watchtower/probe/dependencies.py) on the same ones
    assert split.stages > 1
    assert len(split.worker_cpu) == 2 and all(c > 0 for c in split.worker_cpu)

    def verdicts(outcome: Any) -> dict[tuple[str, str], str]:
        return {(r.check, r.target.key): str(r.status) for r in outcome.results}

    a, b = verdicts(alone), verdicts(split)
    assert a.keys() == b.keys() and len(a) == alone.total == split.total
    differ = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert not differ, differ
    assert split.dns_stats["sent"] > 0
    # The workers keep their caches from stage to stage: the split sweep asks the name servers
    # about as often as one process (only questions two shards share go out twice). Workers
    # forked afresh per stage sent 24 % more on a 6-domain lab.
    assert split.dns_stats["sent"] <= alone.dns_stats["sent"] * 1.1, (split.dns_stats,
                                                                       alone.dns_stats)


def test_a_killed_worker_loses_only_its_unreported_probes(
        lab_fleet: Fleet, small_threshold: None, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = select_checks()
    fleet = _with_processes(lab_fleet, 2)
    jobs = plan_jobs(fleet, checks)
    killed: list[int] = []

    class KillingAtFirstResult(ProcessRunner):
        """Kills, at the sweep's very first result, the worker that did not send it: that
        worker has reported nothing yet, so some of its probes are surely unreported (killing
        later, from `on_result`, raced a shard that finished inside the engine's first
        batch)."""

        def run(self, jobs: list[Any], stop: Any = None) -> Iterator[Result]:
            # A sweep runs in stages (prerequisites first); the kill waits for the last, large
            # one (the few prerequisites of a stage may all be in before a kill).
            large = len(jobs) > 50
            for result in super().run(jobs, stop):
                if large and not killed:
                    victim = self.slots[1 - self.shard_of(result.target)].proc
                    os.kill(victim.pid, signal.SIGKILL)
                    killed.append(victim.pid)
                yield result

    monkeypatch.setattr("watchtower.probe.sweep.ProcessRunner", KillingAtFirstResult)
    outcome = run_sweep(fleet, None, checks)
    assert killed, "the sweep never reported a result"
    assert outcome.total == len(jobs)  # every pair has a result, none twice
    assert len({(r.check, r.target.key) for r in outcome.results}) == len(jobs)
    died = [r for r in outcome.results if r.evidence.get("error_kind") == "worker-died"]
    assert died, "no probe was reported as lost with its worker"
    assert all("signal 9" in r.summary for r in died)
    assert len(died) < len(jobs)


def test_workers_do_not_run_the_parents_main_script(
        lab_fleet: Fleet, small_threshold: None, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """multiprocessing re-runs the parent's __main__ in a forkserver child unless told not to;
    a script without a __name__ guard (or a Streamlit page a test runs as __main__) would
    then run, and here exit, in every worker."""
    script = tmp_path / "unguarded.py"
    script.write_text("raise SystemExit(3)\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    checks = select_checks(["dns"])
    outcome = run_sweep(_with_processes(lab_fleet, 2), None, checks)
    assert outcome.processes == 2
    died = [r.summary for r in outcome.results
            if r.evidence.get("error_kind") == "worker-died"]
    assert not died, died[:3]
    assert len(outcome.worker_cpu) == 2
