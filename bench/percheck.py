"""Profile: CPU per check id over one in-process sweep of a lab, from each probe thread's clock.

Why this and not only py-spy: a sampling profile names functions, but the question a check
author asks is "which check costs what". Every probe runs `execute` on its own thread, so the
thread's CPU clock (`time.thread_time`) read around `execute` is that check's own CPU: its
gather (sockets, parsing, TLS) and its judge, without the other threads'. Facts shared with an
earlier check (one fetch for many readers) are charged to the check that fetched them.

Also printed: the sweep's process CPU per check, the context switches it made (the cost of
many runnable probe threads handing on the GIL), and the lab's CPU, apart.

    .venv/bin/python bench/percheck.py [--domains 20] [--concurrency 32] [--skip GLOB] [--top 25]
"""

from __future__ import annotations

import argparse
import fnmatch
import resource
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._lab import lab_cpu_seconds, lab_process
from watchtower.config import load_fleet
from watchtower.probe import registry, runner
from watchtower.probe.sweep import run_sweep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--skip", action="append", default=[], metavar="GLOB")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()

    cpu: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    execute = runner.execute

    def timed(job: Any, ctx: Any) -> Any:
        begun = time.thread_time()
        try:
            return execute(job, ctx)
        finally:
            spent = time.thread_time() - begun
            with lock:
                cpu[job.check.meta.id] += spent
                count[job.check.meta.id] += 1

    runner.execute = timed  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp, lab_process(Path(tmp) / "lab",
                                                            args.domains) as fleet_path:
        fleet = load_fleet(fleet_path)
        fleet = fleet.model_copy(update={"probe": fleet.probe.model_copy(
            update={"sweep_processes": 1, "concurrency": args.concurrency})})
        checks = {cid: c for cid, c in registry.checks().items()
                  if not any(fnmatch.fnmatchcase(cid, g) for g in args.skip)}
        lab_before = lab_cpu_seconds(Path(tmp) / "lab")
        before = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic()
        outcome = run_sweep(fleet, None, checks, keep_results=False)
        wall = time.monotonic() - wall
        after = resource.getrusage(resource.RUSAGE_SELF)
        lab = lab_cpu_seconds(Path(tmp) / "lab") - lab_before
    runner.execute = execute

    total = sum(cpu.values())
    checks_run = sum(count.values())
    process_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    counts = {str(status): n for status, n in outcome.status_counts.items()}
    print(f"{checks_run} checks in {wall:.1f} s; process CPU {process_cpu:.2f} s "
          f"({process_cpu / checks_run * 1000:.2f} ms/check: user "
          f"{after.ru_utime - before.ru_utime:.2f} s, sys {after.ru_stime - before.ru_stime:.2f}"
          f" s); probe threads {total:.2f} s ({total / checks_run * 1000:.2f} ms/check); "
          f"voluntary context switches {after.ru_nvcsw - before.ru_nvcsw:,}; "
          f"lab CPU {lab:.2f} s ({lab / checks_run * 1000:.2f} ms/check); "
          f"results {counts}")
    print(f"{'check':34} {'runs':>5} {'ms/run':>8} {'share':>6}")
    for cid, spent in sorted(cpu.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"{cid:34} {count[cid]:5} {spent / count[cid] * 1000:8.2f} "
              f"{spent / total * 100:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
