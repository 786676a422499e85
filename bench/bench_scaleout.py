"""Benchmark: the scale-out engine (watchtower/scaleout on procrastinate) over the lab, with 1,
2 and 3 agents, against a local sweep of the same jobs in the same run.

Per agent count: one tick of every schedule group deferred into the queue of one vantage, run by
that many agents (separate processes), until every expected result is recorded; then judged.
Figures (one line each):
- throughput: pairs recorded per second, defer to the last result;
- CPU per check of the agents (their /proc user + system time over the run / pairs);
- queue latency from defer to a job's start, p50 and p99 (from the agents' "start" lines);
- database rows and bytes per sweep (procrastinate jobs and events, vantage results, the
  combined results' write) from pg_database_size and the row counts;
- the engine's overhead: the 1-agent wall time over a local `run_sweep` of the same jobs on
  the same store (printed side by side).

    .venv/bin/python bench/bench_scaleout.py [--domains 50] [--agents 1,2,3] [--skip GLOB]

The lab and PostgreSQL (tests/servers/postgres.py: a throwaway cluster) run in their own
processes; this machine has 2 cores, so 3 agents compete with the lab and PostgreSQL for them:
read the throughput as how far the engine scales here, not a ceiling.
"""

from __future__ import annotations

import _thread
import argparse
import asyncio
import datetime as dt
import faulthandler
import fnmatch
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._lab import lab_process, summary
from tests.servers.postgres import PostgreSQL
from watchtower.config import load_fleet
from watchtower.probe import registry
from watchtower.probe.sweep import run_sweep, select_checks
from watchtower.scaleout import engine
from watchtower.scaleout.fanout import Fanout
from watchtower.store import Store

VANTAGE = "local"
STARTED = re.compile(r"^(\S+ \S+) INFO \S+: \S+: start \S+ tick \d+", re.M)


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fleet_file(lab_fleet: Path, url: str, skip: list[str], out: Path) -> Path:
    """The lab's fleet with the PostgreSQL store, one vantage, the skipped checks disabled."""
    data = tomllib.loads(lab_fleet.read_text())
    data.setdefault("store", {})["database"] = url
    data["scaleout"] = {"vantages": [VANTAGE], "tick": 1, "lease": 10, "chunk": 25,
                        "agent_concurrency": 2}
    data.setdefault("metrics", {})["listen"] = "127.0.0.1:0"
    # the skipped globs first (the first matching glob wins), then one schedule group with
    # its deadline an hour away: a job waiting in the queue behind the others must not be
    # dropped as stale, the run measures how fast the queue drains
    data["checks"] = {**{glob: {"disabled": True} for glob in skip},
                      **data.get("checks", {}), "*": {"interval": 3600}}
    base = lab_fleet.parent
    for section, key in (("probe", "ca_bundle"),):  # relative paths stay the lab's
        value = data.get(section, {}).get(key)
        if value and not Path(value).is_absolute():
            data[section][key] = str(base / value)
    out.write_text(tomli_w.dumps(data))
    return out


def db_size(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())")
                   .scalar_one())


def row_counts(store: Store) -> dict[str, int]:
    tables = ("procrastinate_jobs", "procrastinate_events", "vantage_result", "result",
              "state", "evidence", "sweep")
    with store.engine.connect() as conn:
        return {t: int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar_one())
                for t in tables}


async def defer_all(fanout: Fanout, url: str, tick: int) -> int:
    app = engine.make_app(url, fanout, fanout.fleet.scaleout.tick)
    async with app.open_async():
        for group in fanout.groups():
            await fanout.defer(app, group, tick)
    return sum(d.expected for d in fanout.store.vantages.due(
        dt.datetime.fromtimestamp(tick, dt.UTC) + dt.timedelta(days=1)) if d.tick == tick)


def start_agents(n: int, fleet: Path, workdir: Path) -> list[tuple[subprocess.Popen[bytes], Path]]:
    agents = []
    for i in range(n):
        log = workdir / f"agent-{n}-{i}.log"
        with open(log, "wb") as out:
            agents.append((subprocess.Popen(
                [sys.executable, "-m", "watchtower.cli", "agent", "-c", str(fleet),
                 "--vantage", VANTAGE, "--name", f"{VANTAGE}-{i}"],
                stdout=out, stderr=subprocess.STDOUT), log))
    deadline = time.monotonic() + 60
    while not all("claims jobs" in log.read_text() for _, log in agents):
        if time.monotonic() > deadline:
            raise RuntimeError(f"agents did not start; see {workdir}")
        time.sleep(0.2)
    time.sleep(1.0)  # their workers listen once the app is open
    return agents


def recorded(store: Store, tick: int) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql(
            f"SELECT COUNT(*) FROM vantage_result WHERE tick = {int(tick)}").scalar_one())


def queued(store: Store) -> int:
    """Probe jobs not finished yet (waiting or running)."""
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql(
            "SELECT COUNT(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing') "
            "AND task_name = 'watchtower.probe'").scalar_one())


def run_with(n: int, fleet_path: Path, fanout: Fanout, store: Store, url: str,
             workdir: Path) -> dict[str, Any]:
    agents = start_agents(n, fleet_path, workdir)
    try:
        cpu0 = [proc_cpu(p.pid) for p, _ in agents]
        size0, rows0 = db_size(store), row_counts(store)
        tick = int(time.time())
        deferred_at = time.time()
        expected = asyncio.run(defer_all(fanout, url, tick))
        while recorded(store, tick) < expected and queued(store):
            time.sleep(0.05)
        wall = time.time() - deferred_at
        cpu = sum(proc_cpu(p.pid) - c for (p, _), c in zip(agents, cpu0, strict=True))
        size1, rows_defer = db_size(store), row_counts(store)
        judged_at = time.monotonic()
        fanout.judge_due(dt.datetime.now(dt.UTC))
        judge_s = time.monotonic() - judged_at
        rows1, size2 = row_counts(store), db_size(store)
    finally:
        for p, _ in agents:
            p.terminate()
        for p, _ in agents:
            p.wait(30)
    starts = [dt.datetime.strptime(m, "%Y-%m-%d %H:%M:%S,%f").timestamp()
              for _, log in agents for m in STARTED.findall(log.read_text())]
    latency = sorted(s - deferred_at for s in starts)
    return {"n": n, "pairs": expected, "wall": wall, "cpu": cpu, "jobs": len(starts),
            "p50": statistics.median(latency) if latency else 0.0,
            "p99": latency[min(len(latency) - 1, int(len(latency) * 0.99))] if latency else 0.0,
            "rows": {t: rows1[t] - rows0[t] for t in rows1},
            "rows_defer": {t: rows_defer[t] - rows0[t] for t in rows1},
            "bytes_defer": size1 - size0,
            "bytes_total": size2 - size0, "judge_s": judge_s}


def local_sweep(fanout: Fanout, store: Store) -> tuple[float, int]:
    """The same jobs as one tick, by `run_sweep` in this process, on the same store."""
    jobs = [job for group in fanout.groups() for job in fanout.plan(group)]
    checks = {j.check.meta.id: j.check for j in jobs}
    started = time.monotonic()
    outcome = run_sweep(fanout.fleet, store, checks, jobs=jobs, keep_results=False)
    return time.monotonic() - started, outcome.total


def _stop_cleanly_after(seconds: float) -> None:
    """SIGTERM and a run past `seconds` (stacks dumped first) unwind through the context
    managers, so the lab, PostgreSQL and the agents are stopped, not left behind."""
    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    def too_long() -> None:
        faulthandler.dump_traceback()
        _thread.interrupt_main()

    signal.signal(signal.SIGTERM, on_term)
    timer = threading.Timer(seconds, too_long)
    timer.daemon = True
    timer.start()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", type=int, default=50)
    ap.add_argument("--agents", default="1,2,3", help="agent counts to run, e.g. 1,2,3")
    ap.add_argument("--skip", action="append", default=None, metavar="GLOB",
                    help="checks left out (default: *.ncsc, the daily full TLS scans)")
    ap.add_argument("--hang-after", type=float, default=900,
                    help="seconds after which stacks are dumped and the run ends")
    args = ap.parse_args()
    _stop_cleanly_after(args.hang_after)
    skip = args.skip if args.skip is not None else ["*.ncsc"]
    counts = [int(n) for n in args.agents.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
        base = Path(tmp)
        with PostgreSQL(base / "pg") as pg, lab_process(base / "lab", args.domains) as lab:
            fleet_path = fleet_file(lab, pg.url, skip, base / "fleet.toml")
            fleet = load_fleet(fleet_path, registry.check_ids_and_families())
            checks = {cid: c for cid, c in select_checks().items()
                      if not any(fnmatch.fnmatchcase(cid, g) for g in skip)}
            store = Store(pg.url)
            fanout = Fanout(fleet, store, checks)
            engine.ensure_schema(engine.make_app(pg.url, fanout, 1),
                                 store.vantages.engine_schema_present)
            local_sweep(fanout, store)  # warms the lab (first answers are slower), unused
            local_s, local_n = local_sweep(fanout, store)
            runs = [run_with(n, fleet_path, fanout, store, pg.url, base) for n in counts]
            store.close()
    report(args.domains, skip, local_s, local_n, runs)
    return 0


def report(domains: int, skip: list[str], local_s: float, local_n: int,
           runs: list[dict[str, Any]]) -> None:
    print(f"# {domains} lab domains, checks left out: {', '.join(skip) or 'none'}; "
          f"{runs[0]['pairs']} pairs per sweep; one vantage; local sweep of the same jobs "
          f"{local_s:.2f} s ({local_n} results); load average {os.getloadavg()[0]:.2f}",
          flush=True)
    for r in runs:
        n = r["n"]
        summary(f"scaleout.{n}_agents.throughput", r["pairs"] / r["wall"], "checks/s",
                note=f"{r['pairs']} pairs in {r['wall']:.2f} s, {r['jobs']} jobs")
        summary(f"scaleout.{n}_agents.cpu_per_check", r["cpu"] * 1000 / r["pairs"], "ms",
                note=f"{r['cpu']:.2f} CPU s over {n} agent process(es)")
        summary(f"scaleout.{n}_agents.defer_to_start_p50", r["p50"], "s")
        summary(f"scaleout.{n}_agents.defer_to_start_p99", r["p99"], "s")
        rows = {t: v for t, v in r["rows"].items() if v}
        queued = {t: v for t, v in r["rows_defer"].items() if v}
        summary(f"scaleout.{n}_agents.bytes_per_sweep", r["bytes_total"], "bytes",
                note=f"{r['bytes_defer']} before judging, rows then {queued}; after "
                     f"judging (vantage results deleted, finished jobs deleted) rows added "
                     f"{rows}; judge {r['judge_s']:.2f} s")
    one = runs[0]
    summary("scaleout.overhead_vs_local", one["wall"] / local_s, "x",
            note=f"{one['n']} agent {one['wall']:.2f} s | local run_sweep {local_s:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
