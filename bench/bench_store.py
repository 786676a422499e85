"""Benchmark: store growth for 1,000 domains swept every 5 minutes, 30 days (target <= 100 MB).

Drives the real `Store.record` (SQLite) with synthetic results in fast-forward time: one batch
per simulated sweep, `at` advancing 5 minutes each time. The change model, per (check, target):
- most pairs are stable: the same status, summary and evidence every sweep (they extend their
  streak; the store's design promises these cost nothing new);
- `--flappy` of the pairs (default 3 %) flap: each sweep one of them changes status with
  probability `--flap-rate` (default 5 %, about 14 changes a day each);
- certificate checks (3 endpoints per domain) change their summary and evidence once a day
  ("valid until ..., N days").

Simulating all 8,640 sweeps takes hours of CPU, so by default the bench simulates `--days`
(default 0.05) and extrapolates linearly to 30 days from the growth per simulated day after the
first sweep (the first sweep's size is the fixed part). The line says when it extrapolated.

    .venv/bin/python bench/bench_store.py [--domains 1000] [--checks 45] [--days 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._lab import summary
from watchtower.model import Result, Status, Target, TargetKind
from watchtower.store import Store

TARGET_MB = 100.0
SWEEP_MINUTES = 5
FAMILIES = ("dns", "mail", "web", "fedi", "matrix", "storage")
CERT_CHECKS = 3


def db_size_mb(path: Path) -> float:
    files = [path, path.with_name(path.name + "-wal")]
    return sum(f.stat().st_size for f in files if f.exists()) / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--checks", type=int, default=45, help="checks per domain")
    ap.add_argument("--days", type=float, default=0.05,
                    help="simulated days (then extrapolate; ~30 s of CPU per sweep)")
    ap.add_argument("--flappy", type=float, default=0.03)
    ap.add_argument("--flap-rate", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    targets = [Target(TargetKind.ZONE, f"d{i:04d}.test") for i in range(args.domains)]
    checks = [(f"{FAMILIES[c % len(FAMILIES)]}.check{c:02d}", FAMILIES[c % len(FAMILIES)])
              for c in range(args.checks)]
    pairs = [(t, c, f) for t in targets for c, f in checks]
    flappy = set(rng.sample(range(len(pairs)), round(args.flappy * len(pairs))))
    cert_checks = {c for c, _ in checks[:CERT_CHECKS]}
    failing: set[int] = set()
    sweeps = max(2, round(args.days * 24 * 60 / SWEEP_MINUTES))
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        path = Path(tmp) / "store.db"
        store = Store(f"sqlite:///{path}")
        t0 = time.monotonic()
        first_mb = 0.0
        for n in range(sweeps):
            at = start + dt.timedelta(minutes=SWEEP_MINUTES * n)
            day = n * SWEEP_MINUTES // (24 * 60)
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
                with store.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                first_mb = db_size_mb(path)
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        elapsed = time.monotonic() - t0
        size = db_size_mb(path)
        days = sweeps * SWEEP_MINUTES / (24 * 60)
        per_day = (size - first_mb) / days
        projected = first_mb + per_day * 30
        extrapolated = days < 30
        print(f"# {args.domains} domains x {args.checks} checks = {len(pairs)} results per "
              f"sweep; {sweeps} sweeps ({days:.2f} simulated days) in {elapsed:.0f} s "
              f"({len(pairs) * sweeps / elapsed:,.0f} results/s recorded); size after the "
              f"first sweep {first_mb:.1f} MB, after all {size:.1f} MB; growth "
              f"{per_day:.2f} MB/day", flush=True)
        summary("store.size_30d", projected, "MB", TARGET_MB,
                note=f"extrapolated linearly from {days:.2f} simulated days" if extrapolated
                else "simulated in full")
        summary("store.record_rate", len(pairs) * sweeps / elapsed, "results/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
