"""Benchmark: the dashboard overview at 1,000 domains x the full catalog (target <= 2 s).

Seeds a fresh SQLite store with 1,000 domains x 45 checks (zone: 11 dns, mail domain: 21 mail,
HTTPS endpoint: 6 web, Mastodon service: 6 fedi + 1 drift) straight into the `state` table,
plus a day of flips, then times:
  1. the overview's data assembly (state groups, the targets x families table, changes since
     yesterday, open problems), uncached, median of 5 runs;
  2. a full AppTest render of the overview page for a signed-in user, with Streamlit's caches
     cleared first (the cost a person sees on a first visit), median of 3 runs.
Each figure prints one line with its ratio to the 2-second target (below 1.0 is within it).

    .venv/bin/python bench/bench_dashboard.py [--domains 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 2.0
FAMILIES = {  # target kind -> (family, number of checks)
    "zone": [("dns", 11)],
    "mail_domain": [("mail", 21)],
    "endpoint": [("web", 6)],
    "mastodon": [("fedi", 6), ("drift", 1)],
}


def seed(url: str, domains: int, rng: random.Random) -> int:
    from sqlalchemy import insert

    from watchtower.store import FlipRow, StateRow, Store

    store = Store(url)
    now = dt.datetime.now(dt.UTC)
    states, flips = [], []
    for i in range(domains):
        domain = f"customer{i:04d}.example"
        tags = json.dumps([f"customer:c{i % 40}", rng.choice(["gold", "silver", "bronze"])])
        names = {"zone": domain, "mail_domain": domain, "endpoint": f"social.{domain}:443",
                 "mastodon": f"social.{domain}"}
        for kind, fams in FAMILIES.items():
            for family, n in fams:
                for c in range(n):
                    status = rng.choices(["ok", "warn", "fail", "error"], [85, 7, 5, 3])[0]
                    since = now - dt.timedelta(hours=rng.uniform(1, 24 * 30))
                    check = f"{family}.check{c:02d}"
                    states.append({"check_id": check, "target": names[kind],
                                   "target_kind": kind, "family": family, "status": status,
                                   "summary": f"{status}: seeded result {c}", "since": since,
                                   "last_at": now, "duration_ms": rng.uniform(5, 400),
                                   "streak": rng.randint(1, 50), "tags": tags})
                    if since > now - dt.timedelta(days=1):
                        flips.append({"check_id": check, "target": names[kind],
                                      "at": since, "old": "ok", "new": status,
                                      "reason": "seeded"})
    with store.engine.begin() as conn:
        conn.execute(insert(StateRow), states)
        if flips:
            conn.execute(insert(FlipRow), flips)
    store.close()
    return len(states)


def time_assembly(url: str, runs: int = 5) -> float:
    from watchtower.dashboards import data

    from watchtower.store import Store

    store = Store(url)
    store.dashboard.ensure_tables()  # as the app does when it opens the store
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        ov = data.build_overview(data.load_state_groups(store), data.OverviewFilter())
        ov.table()
        data.changes_since(store, dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
        data.problems(store, limit=300)
        times.append(time.perf_counter() - t)
    store.close()
    return statistics.median(times)


def time_render(fleet: Path, runs: int = 3) -> float:
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    from watchtower.dashboards.auth import Role, User
    from watchtower.dashboards.session import LAST_KEY, USER_KEY

    from watchtower.model import utcnow

    os.environ["WATCHTOWER_FLEET"] = str(fleet)
    app = str(ROOT / "dashboards" / "app.py")
    AppTest.from_file(app, default_timeout=120).run()  # warm imports once (not measured)
    times = []
    for _ in range(runs):
        st.cache_data.clear()
        at = AppTest.from_file(app, default_timeout=120)
        at.session_state[USER_KEY] = User("bench", Role.VIEWER)
        at.session_state[LAST_KEY] = utcnow()
        t = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t)
        if at.exception or [x.value for x in at.title] != ["Fleet overview"]:
            sys.exit(f"render failed: {[e.message for e in at.exception]}")
    return statistics.median(times)


def line(name: str, seconds: float, detail: str) -> str:
    return (f"{name}: {seconds:.3f} s {detail} (target {TARGET_SECONDS:.1f} s, "
            f"ratio {seconds / TARGET_SECONDS:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t = time.perf_counter()
        n = seed(url, args.domains, random.Random(8))
        seeded = time.perf_counter() - t
        fleet = Path(tmp) / "fleet.toml"
        fleet.write_text(tomli_w.dumps({"store": {"database": url},
                                        "dashboard": {"users_file": "users.toml"}}))
        print(f"seeded {n} states ({args.domains} domains x 45 checks) in {seeded:.1f} s")
        print(line("overview data assembly", time_assembly(url), f"for {n} states"))
        print(line("overview full AppTest render", time_render(fleet),
                   f"for {args.domains * 4} targets, caches cleared"))


if __name__ == "__main__":
    main()
