"""Benchmark: `/metrics` scrape time for 1,000 domains x the full catalog (target <= 200 ms).

Seeds a SQLite store with 1,000 domains x 45 checks (45,000 state rows, the size `state` reaches
for such a fleet) plus a certificate-expiry gauge per web endpoint, serves it with the real
MetricsServer on loopback and times HTTP scrapes (gzip, as Prometheus asks): cold (cache off:
every scrape reads the store and renders in line) and as served (scrapes 1.5 s apart; each gets
the page rendered in the background after the previous one, see MetricsPage). Prints one line
per figure with the ratio to target.

    .venv/bin/python bench/bench_metrics.py [--domains 1000] [--checks 45] [--scrapes 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import insert

from watchtower.metrics import MetricsApp, MetricsPage, MetricsServer
from watchtower.store import GaugeRow, StateRow, Store

TARGET_MS = 200.0
FAMILIES = ("dns", "mail", "web", "fedi", "matrix", "storage", "drift", "host")
STATUSES = ("ok", "ok", "ok", "ok", "warn", "fail", "error")


def seed(store: Store, domains: int, checks: int) -> int:
    now = dt.datetime.now(dt.UTC)
    rows, gauges = [], []
    for d in range(domains):
        target = f"d{d:04d}.example.test"
        for c in range(checks):
            family = FAMILIES[c % len(FAMILIES)]
            rows.append({"check_id": f"{family}.check{c:02d}", "target": target,
                         "target_kind": "zone", "family": family,
                         "status": STATUSES[(d + c) % len(STATUSES)], "summary": "seeded",
                         "since": now, "last_at": now - dt.timedelta(seconds=c),
                         "duration_ms": 10.0 + c, "streak": 1, "tags": "[]"})
        for service in ("social", "video", "photos"):
            gauges.append({"check_id": "web.tls.certificate", "target": f"{service}.{target}:443",
                           "name": "certificate_expiry_timestamp_seconds", "family": "web",
                           "value": now.timestamp() + 86400 * 60, "at": now})
    with store.engine.begin() as conn:
        conn.execute(insert(StateRow), rows)
        conn.execute(insert(GaugeRow), gauges)
    return len(rows)


def timed_scrapes(url: str, count: int, pause: float) -> tuple[list[float], int]:
    times, size = [], 0
    with requests.Session() as http:
        for _ in range(count):
            started = time.perf_counter()
            r = http.get(url, timeout=30)
            times.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
            size = len(r.content)
            if pause:
                time.sleep(pause)
    return times, size


def line(label: str, times: list[float]) -> str:
    p50 = statistics.median(times)
    worst = max(times)
    return (f"{label}: p50 {p50:.0f} ms, max {worst:.0f} ms; target <= {TARGET_MS:.0f} ms; "
            f"ratio {worst / TARGET_MS:.2f} (max/target)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--checks", type=int, default=45)
    ap.add_argument("--scrapes", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        pairs = seed(store, args.domains, args.checks)
        cold = MetricsServer(MetricsApp(MetricsPage(store, cache_seconds=0, max_stale=0)),
                             "127.0.0.1:0").start()
        page = MetricsPage(store)
        served = MetricsServer(MetricsApp(page), "127.0.0.1:0").start()
        try:
            timed_scrapes(f"http://127.0.0.1:{cold.port}/metrics", 1, 0)  # warm imports
            cold_times, size = timed_scrapes(f"http://127.0.0.1:{cold.port}/metrics",
                                             args.scrapes, 0)
            served_times, _ = timed_scrapes(f"http://127.0.0.1:{served.port}/metrics",
                                            max(3, args.scrapes // 2), 1.5)
        finally:
            cold.shutdown()
            served.shutdown()
            store.close()
    what = f"{args.domains} domains x {args.checks} checks = {pairs} pairs, {size / 1e6:.1f} MB"
    print(line(f"metrics scrape, cold render ({what})", cold_times))
    print(line("metrics scrape, as served (stale-while-revalidate, scrapes 1.5 s apart)",
               served_times[1:]))
    print(f"metrics background render: {page.last_render_seconds * 1000:.0f} ms per render "
          f"(no target: off the scrape path)")


if __name__ == "__main__":
    main()
