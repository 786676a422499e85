"""Benchmark: one full-catalog sweep over a 1,000-domain lab, and a bare replay of its traffic.

Figures (one line each): sweep wall time (target <= 40 s), checks/s, peak RSS of the sweeping
processes (target <= 300 MB), their CPU per check from resource usage (target <= 1.0 ms), the
lab's CPU per check (the lab runs in its own process and is excluded from the former), the
ratio of the sweep's wall time to a bare replay of the same DNS and HTTP round trips with the
same concurrency (target <= 1.5x), and the lab's own rates during the replay (its Python DNS
server's queries/s and web front's requests/s: if those are low, the lab, not watchtower,
bounds the figures).

How the replay is fair: the sweep runs with recording wrappers on the Resolver's and
HttpClient's *uncached* exchange methods (installed here, on the classes, for this process
only), so the replay asks exactly the distinct questions and fetches exactly the URLs the sweep
sent on the wire; it then sends them again with plain dnspython and urllib3 (TLS verified
against the lab CA, SNI set) on a thread pool of the fleet's concurrency. TLS-only probes and
SMTP dialogues are not replayed (the replay is the lower bound, the ratio errs against us).

    .venv/bin/python bench/bench_sweep.py [--domains 1000] [--fault-share 0.1]
"""

from __future__ import annotations

import argparse
import fnmatch
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dns.message
import dns.query
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._lab import PssPeak, cpu_count, lab_cpu_seconds, lab_process, peak_rss_mb, summary
from watchtower.config import load_fleet
from watchtower.net.dns import Resolver, Server
from watchtower.net.http import HttpClient
from watchtower.parsers import ParseError
from watchtower.parsers.domains import organizational_domain
from watchtower.probe import registry, workers
from watchtower.probe.sweep import run_sweep, select_checks
from watchtower.store import Store

TARGET_WALL_S = 40.0
TARGET_RSS_MB = 300.0
TARGET_REPLAY_RATIO = 1.5
TARGET_CPU_MS = 1.0


class Recorder:
    """The wire-level questions and URLs of one sweep (wrappers on the uncached paths)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.dns: list[tuple[str, int, str, str, bool, bool]] = []
        self.http: list[tuple[str, str, dict[str, str]]] = []

    def install(self) -> Callable[[], None]:
        rec = self
        orig_resolve, orig_ask, orig_one = Resolver._resolve, Resolver._ask, HttpClient._one

        def _resolve(self: Resolver, name: str, rdtype: str, dnssec: bool, unchecked: bool,
                     deadline: Any) -> Any:
            srv = self.nameservers[0]
            with rec.lock:
                rec.dns.append((srv.host, srv.port, name, rdtype, True, dnssec))
            return orig_resolve(self, name, rdtype, dnssec, unchecked, deadline)

        def _ask(self: Resolver, srv: Server, name: str, rdtype: str, recursion: bool,
                 dnssec: bool, deadline: Any) -> Any:
            with rec.lock:
                rec.dns.append((srv.host, srv.port, name, rdtype, recursion, dnssec))
            return orig_ask(self, srv, name, rdtype, recursion, dnssec, deadline)

        def _one(self: HttpClient, method: str, url: str, headers: Any, *args: Any) -> Any:
            with rec.lock:
                rec.http.append((method, url, dict(headers or {})))
            return orig_one(self, method, url, headers, *args)

        Resolver._resolve = _resolve  # type: ignore[method-assign]
        Resolver._ask = _ask  # type: ignore[method-assign]
        HttpClient._one = _one  # type: ignore[method-assign,assignment]

        def uninstall() -> None:
            Resolver._resolve, Resolver._ask = orig_resolve, orig_ask  # type: ignore[method-assign]
            HttpClient._one = orig_one  # type: ignore[method-assign]

        return uninstall


def cpu_seconds() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


DnsQ = tuple[str, int, str, str, bool, bool]
HttpQ = tuple[str, str, dict[str, str]]


def replay(dns_qs: list[DnsQ], http_qs: list[HttpQ], concurrency: int, ca_bundle: str,
           timeout: float, max_body: int) -> tuple[float, float, float, int]:
    """Send recorded traffic again, bare; (total s, DNS s, HTTP s, failures)."""
    failures = 0
    local = threading.local()

    def ask(q: tuple[str, int, str, str, bool, bool]) -> None:
        nonlocal failures
        host, port, name, rdtype, rd, do = q
        msg = dns.message.make_query(name, rdtype, want_dnssec=do, use_edns=0, payload=1232)
        if not rd:
            msg.flags &= ~dns.flags.RD
        try:
            reply = dns.query.udp(msg, host, port=port, timeout=timeout)
            if reply.flags & dns.flags.TC:
                dns.query.tcp(msg, host, port=port, timeout=timeout)
        except Exception:
            failures += 1

    def fetch(item: tuple[str, str, dict[str, str]]) -> None:
        nonlocal failures
        method, url, headers = item
        parts = urlsplit(url)
        host = parts.hostname or ""
        pools: dict[tuple[str, str, int], Any] = getattr(local, "pools", None) or {}
        local.pools = pools
        key = (parts.scheme, host, parts.port or 0)
        pool = pools.get(key)
        if pool is None:
            if parts.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    "127.0.0.1", parts.port or 443, server_hostname=host, assert_hostname=host,
                    ca_certs=ca_bundle, cert_reqs="CERT_REQUIRED", maxsize=1, timeout=timeout,
                    retries=False)
            else:
                pool = urllib3.HTTPConnectionPool("127.0.0.1", parts.port or 80, maxsize=1,
                                                  timeout=timeout, retries=False)
            pools[key] = pool
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            resp = pool.urlopen(method, path, headers={"Host": parts.netloc, **headers},
                                redirect=False, preload_content=False)
            got = 0
            for chunk in resp.stream(65536):  # read like the sweep does: capped
                got += len(chunk)
                if got > max_body:
                    break
            resp.release_conn()
        except Exception:
            failures += 1

    t0 = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(ask, dns_qs))
    t1 = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(fetch, http_qs))
    t2 = time.monotonic()
    return t2 - t0, t1 - t0, t2 - t1, failures


def replay_split(rec: Recorder, processes: int, concurrency: int, ca_bundle: str,
                 timeout: float, max_body: int) -> tuple[float, float, float, int]:
    """The replay split like the sweep: by registrable domain over `processes` processes,
    each with its share of the concurrency; (wall s, DNS s, HTTP s, failures), the phase
    times being the slowest process's."""
    if processes <= 1:
        return replay(rec.dns, rec.http, concurrency, ca_bundle, timeout, max_body)
    slices: list[tuple[list[DnsQ], list[HttpQ]]] = [([], []) for _ in range(processes)]
    for q in rec.dns:
        slices[_slot(q[2], processes)][0].append(q)
    for h in rec.http:
        slices[_slot(urlsplit(h[1]).hostname or "", processes)][1].append(h)
    per = max(1, -(-concurrency // processes))
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        list(pool.map(_noop, range(processes)))  # workers up before the clock starts
        t0 = time.monotonic()
        outs = list(pool.map(replay, *zip(*slices, strict=True), [per] * processes,
                             [ca_bundle] * processes, [timeout] * processes,
                             [max_body] * processes))
        wall = time.monotonic() - t0
    return (wall, max(o[1] for o in outs), max(o[2] for o in outs), sum(o[3] for o in outs))


def _noop(_: int) -> None:
    return None


def _slot(name: str, parts: int) -> int:
    try:
        key = organizational_domain(name.rstrip(".")) if "." in name else name
    except ParseError:
        key = name
    return zlib.crc32(key.encode()) % parts


def _record_and_replay(rec: Recorder, fleet: Any, checks: dict[str, Any], processes: int
                       ) -> tuple[Any, tuple[float, float, float, int]]:
    """The wire traffic, recorded in a second, in-process sweep (the recording wrappers live
    in this process), then replayed split as the timed sweep was."""
    one = fleet.model_copy(update={"probe": fleet.probe.model_copy(
        update={"sweep_processes": 1})})
    uninstall = rec.install()
    try:
        recorded = run_sweep(one, None, checks, keep_results=False)
    finally:
        uninstall()
    return recorded, replay_split(rec, processes, fleet.probe.concurrency,
                                  str(fleet.probe.ca_bundle), fleet.probe.http_timeout,
                                  fleet.probe.max_body_bytes)


def _load() -> str:
    """The 1-minute load average (other work on the machine skews every figure)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--fault-share", type=float, default=0.0,
                    help="faulty domains (hangs and 1 GiB bodies measure timeouts, not speed)")
    ap.add_argument("--dir", help="lab directory (default: a temporary one)")
    ap.add_argument("--concurrency", type=int,
                    help="probes in flight (default: the lab fleet file's setting)")
    ap.add_argument("--sweep-only", action="store_true",
                    help="the timed sweep alone, no recording sweep and no replay (for a "
                         "profiler attached to the workers: docs/performance.md)")
    ap.add_argument("--skip", action="append", default=[], metavar="GLOB",
                    help="leave out checks by id or family glob, e.g. web.tls.ncsc (the daily "
                         "full TLS scan: ~175 handshakes per endpoint, measured by "
                         "bench_tlsscan.py)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        base = Path(args.dir or tmp)
        started = time.monotonic()
        with lab_process(base / "lab", args.domains, fault_share=args.fault_share) as fleet_path:
            lab_start = time.monotonic() - started
            fleet = load_fleet(fleet_path, registry.check_ids_and_families())
            if args.concurrency:
                fleet = fleet.model_copy(update={"probe": fleet.probe.model_copy(
                    update={"concurrency": args.concurrency})})
            checks = {cid: c for cid, c in select_checks().items()
                      if not any(fnmatch.fnmatchcase(cid, g) or c.meta.family == g
                                 for g in args.skip)}
            store = Store(f"sqlite:///{base / 'sweep.db'}")
            cpu0, lab0 = cpu_seconds(), lab_cpu_seconds(base / "lab")
            workers.prestart()  # as `watchtower run` does at start-up
            with PssPeak(base / "lab") as pss:
                outcome = run_sweep(fleet, store, checks, keep_results=False)
            cpu = cpu_seconds() - cpu0 + sum(outcome.worker_cpu)
            lab_cpu = lab_cpu_seconds(base / "lab") - lab0
            parent_rss = peak_rss_mb()
            rss = parent_rss + sum(outcome.worker_peak_rss_mb)
            rec, recorded, replayed = Recorder(), None, (0.0, 0.0, 0.0, 0)
            if not args.sweep_only:
                recorded, replayed = _record_and_replay(rec, fleet, checks, outcome.processes)
        total, dns_s, http_s, failures = replayed
        n = outcome.total
        counts = {s.value: c for s, c in outcome.counts().items()}
        one = f"{recorded.seconds:.1f} s" if recorded else "(not run: --sweep-only)"
        skipped = f" (left out: {', '.join(args.skip)})" if args.skip else ""
        print(f"# {args.domains} lab domains (fault share {args.fault_share}), {len(checks)} "
              f"checks{skipped}, {n} results {counts}; lab start {lab_start:.1f} s; "
              f"concurrency {fleet.probe.concurrency}; wire: {len(rec.dns)} DNS questions, "
              f"{len(rec.http)} HTTP requests; replay failures {failures}; "
              f"{outcome.processes} sweep process(es); the same sweep in one process took "
              f"{one}; load average {_load()}", flush=True)
        summary("sweep.wall", outcome.seconds, "s", TARGET_WALL_S)
        summary("sweep.checks_per_s", n / outcome.seconds, "checks/s",
                n / TARGET_WALL_S, higher_is_better=True)
        summary("sweep.peak_rss", rss, "MB", TARGET_RSS_MB,
                note=f"the parent's peak {parent_rss:.0f} MB plus each worker's: "
                     + ", ".join(f"{w:.0f}" for w in outcome.worker_peak_rss_mb)
                     + " MB (pages shared with the forkserver counted in each)")
        summary("sweep.peak_pss", pss.peak_mb, "MB",
                note=f"summed proportional set size of the {pss.processes} sweeping processes "
                     "(parent, forkserver, workers) at its peak, sampled every 0.5 s: shared "
                     "pages counted once")
        summary("sweep.cpu_per_check", cpu * 1000 / max(n, 1), "ms", TARGET_CPU_MS,
                note=f"{cpu:.1f} CPU s in the sweeping processes (parent + workers, lab "
                     "excluded), from their resource usage")
        summary("sweep.cpu_share", cpu / outcome.seconds, "cores",
                note="near 1.0 per process = GIL-bound")
        summary("lab.cpu_per_check", lab_cpu * 1000 / max(n, 1), "ms",
                note=f"{lab_cpu:.1f} CPU s in the lab during the sweep")
        summary("lab.cpu_share", lab_cpu / outcome.seconds, "cores",
                note=f"this machine has {cpu_count()} cores for the lab and the sweep")
        if total:
            summary("sweep.replay_ratio", outcome.seconds / total, "x", TARGET_REPLAY_RATIO,
                    note=f"bare replay {total:.1f} s")
            summary("lab.dns_qps", len(rec.dns) / dns_s if dns_s else 0.0, "queries/s",
                    note="the lab's Python DNS server under the replay")
            summary("lab.web_rps", len(rec.http) / http_s if http_s else 0.0, "requests/s",
                    note="the lab's Python web front under the replay")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
