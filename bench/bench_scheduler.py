"""Benchmark: scheduler lag p99 with 10,000 scheduled jobs (target < 1 s). Runs APScheduler
exactly as watchtower.probe.scheduler configures it (background scheduler, thread pool, coalescing,
one instance per job, misfire grace) with 10,000 interval jobs whose first runs are spread over one
interval (as jitter spreads watchtower's groups), each doing a token amount of work. Lag is
measured by watchtower.probe.runtime.RuntimeStats, the same listener `watchtower run` exports as
watchtower_scheduler_lag_seconds: submission time minus scheduled run time.

    .venv/bin/python bench/bench_scheduler.py [--jobs 10000] [--interval 20] [--seconds 45]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import threading
import time

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watchtower.probe.runtime import RuntimeStats

TARGET_SECONDS = 1.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--interval", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--threads", type=int, default=16)
    args = ap.parse_args()
    lags: list[float] = []
    lock = threading.Lock()

    def record(_job: str, lag: float) -> None:
        with lock:
            lags.append(lag)

    runtime = RuntimeStats(on_lag=record)
    sched = BackgroundScheduler(
        timezone="UTC", executors={"default": ThreadPoolExecutor(args.threads)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300})
    runtime.attach(sched)
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    counter = [0]

    def work() -> None:
        counter[0] += 1  # a token job: the benchmark measures the scheduler, not probes

    rng = random.Random(7)
    for i in range(args.jobs):
        first = now + dt.timedelta(seconds=rng.uniform(0, args.interval))
        sched.add_job(work, IntervalTrigger(seconds=args.interval, timezone="UTC"),
                      id=f"job{i}", next_run_time=first)
    sched.start()
    time.sleep(args.seconds)
    sched.shutdown(wait=False)
    with lock:
        ordered = sorted(lags)
    if not ordered:
        print("scheduler lag: no runs recorded")
        return
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"scheduler lag p99 with {args.jobs} jobs ({len(ordered)} runs in {args.seconds:.0f} s, "
          f"p50 {p50 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms): {p99 * 1000:.0f} ms; "
          f"target < {TARGET_SECONDS * 1000:.0f} ms; ratio {p99 / TARGET_SECONDS:.2f}")
    print(f"scheduler missed runs: {sum(runtime.missed.values())} (target 0)")


if __name__ == "__main__":
    main()
