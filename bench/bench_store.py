"""Benchmark: store size for 1,000 domains swept every 5 minutes, 30 days (target <= 100 MB).

Drives the real `Store.record` (SQLite) with synthetic results in fast-forward time: one batch
per simulated sweep, `at` advancing 5 minutes each time, and applies retention
(`watchtower.store.retention.prune`) at each simulated midnight as the scheduler does daily. The
change model, per (check, target):
- most pairs are stable: the same status, summary and evidence every sweep (they extend their
  streak; the store's design promises these cost nothing new);
- `--flappy` of the pairs (default 3 %) flap: each sweep one of them changes status with
  probability `--flap-rate` (default 5 %, about 14 changes a day each);
- certificate checks (3 endpoints per domain) change their summary and evidence once a day
  ("valid until ..., N days").

How it gets to 30 days, and why that is honest. Simulating 8,640 sweeps of 45,000 results is
hours of CPU, but retention makes the size a sum of parts that each stop growing or grow by a
constant per day, all measured (SQLite `dbstat`, bytes per table and index) at the end of the
run, just before a prune (the daily peak):
- fixed: `state`, the ongoing streak of every pair and everything else (grows with the fleet,
  not with time);
- raw history: `result` and `flip` beyond the fixed part, per simulated day held (the policy
  holds `history_raw_days` + 1 of them at the peak), and `sweep` rows per day likewise;
- rollups: `result_day` per rolled-up day, the rest of the 30 days;
- evidence: bodies kept as the verdict a rolled-up day ended with (certificate checks: one a
  day per host), growth per simulated day times 30;
- free pages (retention's churn, reused by the next day's writes).
The simulation runs with a short raw window (`--sim-raw-days`, default 1) so rollups are
written, merged across prunes and measured within `--days` (default 3); the 30-day figure then
uses the real default window. Growth per day is steady under this change model (the same
number of changes every day), so the parts extrapolate linearly, and after retention the total
plateaus, growing only by the rollups. Checked against a direct run: `--domains 100 --days 10
--sim-raw-days 3` (the real window) plateaued from day 5 (peaks 5.9, 6.2, 6.3, 6.5, 6.6, 6.8 MB,
+0.15 MB/day of which 0.02 is bench-only sweep rows) and extrapolates straight to ~91 MB at
1,000 domains, matching the parts. The old bench extrapolated the first minutes of B-tree page
splits (~916 MB); without retention a day costs ~8 MB at 1,000 domains (~265 MB at 30 days).
With `--domains` below 1,000 the per-pair parts are scaled by 1000/domains (pairs are
independent); sweep rows and empty tables are not. Full scale, 3 days: ~40 min of CPU.

    .venv/bin/python bench/bench_store.py [--domains 1000] [--days 3] [--raw-days 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._lab import summary
from watchtower.model import Result, Status, Target, TargetKind
from watchtower.store import Store
from watchtower.store.retention import Policy, prune

TARGET_MB = 100.0
SWEEP_MINUTES = 5
SWEEPS_PER_DAY = 24 * 60 // SWEEP_MINUTES
FAMILIES = ("dns", "mail", "web", "fedi", "matrix", "storage")
CERT_CHECKS = 3
RAW = ("result", "flip")  # held for the raw window only
KEPT = ("evidence",)  # the last verdict of each rolled-up day keeps its body: grows every day
ROLLUP = ("result_day",)
PER_PAIR = ("result", "flip", "evidence", "state", "result_day")


def db_size_mb(path: Path) -> float:
    files = [path, path.with_name(path.name + "-wal")]
    return sum(f.stat().st_size for f in files if f.exists()) / 1e6


def table_bytes(path: Path) -> dict[str, int]:
    """Bytes per table with its indexes (dbstat), plus `free` (freelist pages)."""
    conn = sqlite3.connect(path)
    try:
        owner = dict(conn.execute(
            "SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')"))
        out: dict[str, int] = {}
        for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            out[table] = out.get(table, 0) + int(size)
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        out["free"] = conn.execute("PRAGMA freelist_count").fetchone()[0] * page
        return out
    finally:
        conn.close()


def checkpoint(store: Store) -> None:
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--checks", type=int, default=45, help="checks per domain")
    ap.add_argument("--days", type=int, default=3, help="simulated days (>= sim-raw-days + 2)")
    ap.add_argument("--raw-days", type=int, default=Policy().raw_days,
                    help="history_raw_days the 30-day figure assumes")
    ap.add_argument("--sim-raw-days", type=int, default=1,
                    help="history_raw_days during the simulation")
    ap.add_argument("--flappy", type=float, default=0.03)
    ap.add_argument("--flap-rate", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    if args.days < args.sim_raw_days + 2:
        ap.error("--days must be at least --sim-raw-days + 2 (rollups written and merged)")
    rng = random.Random(args.seed)
    targets = [Target(TargetKind.ZONE, f"d{i:04d}.test") for i in range(args.domains)]
    checks = [(f"{FAMILIES[c % len(FAMILIES)]}.check{c:02d}", FAMILIES[c % len(FAMILIES)])
              for c in range(args.checks)]
    pairs = [(t, c, f) for t in targets for c, f in checks]
    flappy = set(rng.sample(range(len(pairs)), round(args.flappy * len(pairs))))
    cert_checks = {c for c, _ in checks[:CERT_CHECKS]}
    failing: set[int] = set()
    sweeps = args.days * SWEEPS_PER_DAY
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    policy = Policy(raw_days=args.sim_raw_days)
    prune_seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        path = Path(tmp) / "store.db"
        store = Store(f"sqlite:///{path}")
        t0 = time.monotonic()
        first: dict[str, int] = {}
        peaks: list[float] = []
        for n in range(sweeps):
            at = start + dt.timedelta(minutes=SWEEP_MINUTES * n)
            day = n // SWEEPS_PER_DAY
            if n and n % SWEEPS_PER_DAY == 0:  # midnight: the scheduler's daily prune
                checkpoint(store)
                peaks.append(db_size_mb(path))
                p0 = time.monotonic()
                report = prune(store, policy, now=at)
                prune_seconds += time.monotonic() - p0
                print(f"# day {day}: {peaks[-1]:.1f} MB before prune; {report.line()}; "
                      f"{db_size_mb(path):.1f} MB after", flush=True)
            results = []
            for i, (target, check, family) in enumerate(pairs):
                if i in flappy and rng.random() < args.flap_rate:
                    failing ^= {i}
                bad = i in failing
                status = Status.FAIL if bad else Status.OK
                if check in cert_checks:
                    left = 89 - day % 60
                    summary_text = f"valid until 2026-04-01 ({left} days)"
                    evidence = {"days_left": left, "issuer": "lab CA", "host": target.name}
                else:
                    summary_text = "broken: answered 503" if bad else "all good"
                    evidence = {"status": 503 if bad else 200, "host": target.name}
                results.append(Result(check, family, target, status, summary_text, evidence,
                                      12.5, at))
            sweep_id = store.begin_sweep("bench", len(results))
            for k in range(0, len(results), 2000):
                store.record(results[k:k + 2000], sweep_id)
            store.finish_sweep(sweep_id, {}, "done")
            if n == 0:
                checkpoint(store)
                first = table_bytes(path)
        checkpoint(store)
        elapsed = time.monotonic() - t0
        peak = db_size_mb(path)  # the end of the last day: just before the next prune
        parts = table_bytes(path)
        with store.engine.connect() as conn:
            rolled_days = conn.exec_driver_sql(
                "SELECT COUNT(DISTINCT day) FROM result_day").scalar() or 0
        store.close()
    # Per-pair tables scale with the fleet; the rest (sweep rows, one page per empty table)
    # does not and is counted as measured.
    scale = 1000 / args.domains
    raw_base = sum(first.get(t, 0) for t in RAW + KEPT)
    raw_now = sum(parts.get(t, 0) for t in RAW)
    raw_days_held = args.sim_raw_days + 1
    raw_per_day = (raw_now - sum(first.get(t, 0) for t in RAW)) / raw_days_held * scale
    kept_per_day = sum(parts.get(t, 0) - first.get(t, 0) for t in KEPT) / args.days * scale
    sweeps_per_day = parts.get("sweep", 0) / args.days  # bench sweeps carry wall-clock times
    rollup_per_day = sum(parts.get(t, 0) for t in ROLLUP) / max(1, rolled_days) * scale
    fixed = (sum(v for t, v in parts.items() if t in PER_PAIR and t not in RAW + ROLLUP + KEPT)
             + raw_base) * scale + sum(v for t, v in parts.items()
                                       if t not in (*PER_PAIR, "free", "sweep"))
    rolled_30 = max(0, 30 - (args.raw_days + 1))
    projected = (fixed + (raw_per_day + sweeps_per_day) * (args.raw_days + 1)
                 + rollup_per_day * rolled_30 + kept_per_day * 30
                 + parts.get("free", 0) * scale) / 1e6
    results_per_s = len(pairs) * sweeps / max(elapsed - prune_seconds, 1e-9)
    print(f"# {args.domains} domains x {args.checks} checks = {len(pairs)} results per sweep; "
          f"{sweeps} sweeps ({args.days} simulated days, raw window {args.sim_raw_days} d) in "
          f"{elapsed:.0f} s ({results_per_s:,.0f} results/s recorded; prunes "
          f"{prune_seconds:.1f} s); file {peak:.1f} MB at the end, peaks before prunes "
          + ", ".join(f"{p:.1f}" for p in peaks) + " MB", flush=True)
    print("# bytes by table (with indexes): " + ", ".join(
        f"{t} {v / 1e6:.2f} MB" for t, v in sorted(parts.items(), key=lambda kv: -kv[1])
        if v >= 1e5), flush=True)
    print(f"# parts at 1000 domains: fixed {fixed / 1e6:.1f} MB, raw history "
          f"{raw_per_day / 1e6:.2f} MB/day (x{args.raw_days + 1} held), rollups "
          f"{rollup_per_day / 1e6:.2f} MB/day (x{rolled_30}), evidence kept "
          f"{kept_per_day / 1e6:.2f} MB/day (x30), free pages "
          f"{parts.get('free', 0) * scale / 1e6:.1f} MB (measured at {args.domains} domains, "
          f"per-pair parts scaled x{scale:g})", flush=True)
    note = (f"history_raw_days={args.raw_days}: fixed + raw days + rollup days measured over "
            f"{args.days} simulated days at {args.domains} domains")
    summary("store.size_30d", projected, "MB", TARGET_MB, note=note)
    summary("store.record_rate", results_per_s, "results/s")
    summary("store.prune_seconds", prune_seconds / max(1, len(peaks)), "s per daily prune",
            note=f"at {args.domains} domains")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
