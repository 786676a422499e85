"""One sweep with 100 hostile targets mixed with healthy ones.

The hostile targets: lab stand-ins switched to their hostile faults (hang, a 1 GiB body, a
one-byte-per-second drip, a redirect loop, truncated JSON, invalid UTF-8; ten targets each), TLS
servers that never finish the handshake, name servers that answer garbage bytes or malformed
messages, and mail domains whose MX never sends its SMTP banner (tests/reliability/
hostile_servers.py). The lab and the hostile servers run in processes of their own; the sweep
runs here, in the test's process, with 3 s check timeouts.

What it proves, with the figures printed:
- every hostile target ends `error` (or its check's documented verdict: a fail or warn) within
  its timeout plus the runner's watchdog grace, and no check crashes;
- the sweeping process's resident memory stays bounded (peak growth while the mixed sweep runs);
- a healthy probe's duration moves by less than 10 % (median over probes, each compared with
  itself swept alone in the same round) while the hostile targets are swept beside it.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from watchtower.config import Fleet, load_fleet
from watchtower.model import Result, Status, Target
from watchtower.probe.runner import WATCHDOG_GRACE
from watchtower.probe.sweep import SweepOutcome, run_sweep, select_checks

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 3.0
COPIES = 10
LAB_FAULTS = {  # lab domain -> the stand-in fault of its fediverse app
    "alpha.test": "hang", "bravo.test": "huge-body", "charlie.test": "slow-drip",
    "delta.test": "redirect-loop", "echo.test": "invalid-json", "foxtrot.test": "invalid-utf8",
}
HEALTHY_DOMAINS = ("golf.test", "hotel.test", "india.test")
ROUNDS = int(os.environ.get("WATCHTOWER_HOSTILE_ROUNDS", "3"))
# The goal is < 10 %, on the paired median (see the latency test). Over 12 rounds it is
# 1.03-1.06 with the method's own noise at 1.00-1.02 (docs/reliability.md); one round alone
# ranges 0.99-1.34. The long run (WATCHTOWER_HOSTILE_ROUNDS >= 12) asserts the goal; the short
# CI run (3 rounds) asserts < 25 %, which still catches hostile targets that hold healthy
# probes up (a held probe is slowed 100-fold, not by a tenth).
LATENCY_TOLERANCE = 0.10 if ROUNDS >= 12 else 0.25


@dataclass
class Setup:
    fleet: Fleet
    healthy: list[Target]
    hostile: list[Target]
    # Healthy servers of their own (a second lab process and its name server): the latency
    # test's healthy targets, so what it measures is watchtower, not a lab process that also
    # serves the hostile stand-ins (one Python process: its GIL is shared by both).
    apart_fleet: Fleet
    apart: list[Target]


def _wait_line(proc: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if re.search(pattern, line):
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no line matching {pattern!r} within {timeout}s")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(3)  # the lab's hung requests can hold it longer; nothing to save there
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _hostile_fleet(lab_text: str, dns_port: int, tls_port: int, lab: Fleet) -> str:
    """The lab's fleet file with the hostile front as resolver, 3 s timeouts, 100 hostile
    targets appended."""
    text = re.sub(r'nameservers = \[\s*"[^"]*",?\s*\]', f'nameservers = ["127.0.0.1:{dns_port}"]',
                  lab_text)
    text = text.replace("[probe]\n", "[probe]\nconcurrency = 256\nmax_body_bytes = 1048576\n", 1)
    text = re.sub(r"(?m)^http_timeout = .*$", "http_timeout = 2.0", text)
    text = re.sub(r"(?m)^dns_timeout = .*$", "dns_timeout = 1.5", text)
    extra = [f'[checks."*"]\ntimeout = {TIMEOUT:g}\n']  # a glob beats the family entries
    for domain, fault in LAB_FAULTS.items():
        svc = next(s for s in lab.services if s.name.endswith(domain)
                   and s.kind in ("mastodon", "peertube", "pixelfed"))
        for i in range(COPIES):
            extra.append(f'[[services]]\nname = "hostile-{fault}-{i}"\nkind = "{svc.kind}"\n'
                         f'base_url = "{svc.base_url}"\nprobe_account = "{svc.probe_account}"\n')
    for i in range(COPIES):
        extra.append(f'[[endpoints]]\nname = "hostile-stalled-tls-{i}"\n'
                     f'url = "https://127.0.0.1:{tls_port}/{i}"\n')
        extra.append(f'[[zones]]\nname = "z{i}.garbage.test"\n')
        extra.append(f'[[zones]]\nname = "z{i}.malformed.test"\n')
        extra.append(f'[[mail_domains]]\nname = "m{i}.nobanner.test"\nmta_sts = false\n')
    return text + "\n" + "\n".join(extra)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    d = tmp_path_factory.mktemp("hostile")
    faults = [a for dom, f in LAB_FAULTS.items() for a in ("--fault", f"{dom}=fedi:{f}")]
    lab = subprocess.Popen(
        [sys.executable, "-m", "watchtower.cli", "lab", "--dir", str(d / "lab"), "--domains", "9",
         "--dns-port", "0", "--https-port", "0", "--metrics-listen", "127.0.0.1:0", *faults],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    (d / "no-faults.json").write_text("{}")
    apart_lab = subprocess.Popen(
        [sys.executable, "-m", "watchtower.cli", "lab", "--dir", str(d / "apart"), "--domains",
         "3", "--dns-port", "0", "--https-port", "0", "--metrics-listen", "127.0.0.1:0",
         "--faults-file", str(d / "no-faults.json")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    servers = None
    try:
        _wait_line(lab, "lab running", 60)
        _wait_line(apart_lab, "lab running", 60)
        apart_fleet = load_fleet(d / "apart" / "fleet.toml")
        lab_path = d / "lab" / "fleet.toml"
        lab_fleet = load_fleet(lab_path)
        servers = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.hostile_servers",
             str(lab_fleet.probe.authoritative_port), str(lab_fleet.probe.smtp_port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        ports = json.loads(_wait_line(servers, r"^\{", 20))
        path = d / "fleet.toml"
        path.write_text(_hostile_fleet(lab_path.read_text(), ports["dns"], ports["stalled_tls"],
                                       lab_fleet))
        fleet = load_fleet(path)
        targets = fleet.targets()
        healthy = [t for t in targets if t.name.endswith(HEALTHY_DOMAINS)]
        hostile = [t for t in targets if t.name.startswith("hostile-")
                   or t.name.endswith(("garbage.test", "malformed.test", "nobanner.test"))]
        yield Setup(fleet, healthy, hostile, apart_fleet, apart_fleet.targets())
    finally:
        if servers is not None:
            _stop(servers)
        _stop(lab)
        _stop(apart_lab)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssPeak:
    """Samples this process's resident set every 20 ms while a sweep runs."""

    def __init__(self) -> None:
        self.base = _rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


#: Not latency probes: the two TLS scans spend their seconds on dozens of handshakes of their
#: own (sslyze), and mail.starttls.ncsc alone was 26 of the healthy sweep's 45 probe-seconds.
#: The latency test leaves them out; the containment test sweeps every check.
SCANS = ("mail.starttls.ncsc", "web.tls.ncsc")


def _sweep(fleet: Fleet, targets: list[Target], *, scans: bool = True
           ) -> tuple[list[Result], float]:
    results, seconds, _ = _sweep_outcome(fleet, targets, scans=scans)
    return results, seconds


def _sweep_outcome(fleet: Fleet, targets: list[Target], *, scans: bool = True
                   ) -> tuple[list[Result], float, SweepOutcome]:
    checks = select_checks()
    if not scans:
        checks = {cid: c for cid, c in checks.items() if cid not in SCANS}
    started = time.monotonic()
    outcome = run_sweep(fleet, None, checks, targets=targets)
    return outcome.results, time.monotonic() - started, outcome


def test_one_sweep_contains_100_hostile_targets(setup: Setup) -> None:
    """One sweep, hostile and healthy targets together: bounded time, bounded memory, no
    crash, and the healthy verdicts are the ones a sweep of the healthy targets alone gives."""
    assert len(setup.hostile) == 100, [t.name for t in setup.hostile]
    assert len(setup.healthy) >= 10
    _sweep(setup.fleet, setup.healthy + setup.hostile)  # warm-up: imports, caches, certificates
    alone, _ = _sweep(setup.fleet, setup.healthy)
    with RssPeak() as rss:
        results, seconds, outcome = _sweep_outcome(setup.fleet, setup.healthy + setup.hostile)
    growth = rss.peak - rss.base
    # A sweep this large runs in worker processes forked from a warmed forkserver (~100 MiB
    # each before probing): their peaks bound what the probes hold.
    workers = outcome.worker_peak_rss_mb

    hostile_names = {t.name for t in setup.hostile}
    hostile = [r for r in results if r.target.name in hostile_names]
    statuses: dict[str, int] = {}
    for r in hostile:
        statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
    # The watchdog reports an overdue probe at timeout + grace; its loop and the scheduler of
    # a loaded 2-core box add tens of milliseconds, so 1 s of slack on top.
    limit_ms = (TIMEOUT + WATCHDOG_GRACE + 1.0) * 1000
    slowest = max(r.duration_ms for r in hostile)
    crashed = [r for r in results if (r.evidence or {}).get("error_kind") == "crash"]
    verdict_alone = {(r.check, r.target.name): r.status for r in alone}
    changed = sorted((r.check, r.target.name, str(verdict_alone.get((r.check, r.target.name))),
                      str(r.status), r.summary) for r in results
                     if (r.check, r.target.name) in verdict_alone
                     and verdict_alone[(r.check, r.target.name)] is not r.status)
    print(f"\none sweep: {len(setup.hostile)} hostile targets ({len(hostile)} probes) + "
          f"{len(setup.healthy)} healthy targets ({len(alone)} probes) in {seconds:.1f} s")
    print(f"  hostile statuses {statuses}; slowest hostile probe {slowest:.0f} ms "
          f"(timeout {TIMEOUT:g} s + watchdog grace: limit {limit_ms:.0f} ms)")
    print(f"  peak RSS growth during the sweep: {growth / 2**20:.1f} MiB "
          f"(from {rss.base / 2**20:.0f} MiB) in the sweeping process; its "
          f"{outcome.processes} worker process(es) peaked at "
          f"{', '.join(f'{w:.0f}' for w in workers) or '-'} MiB; healthy verdicts changed: "
          f"{len(changed)}")

    assert not crashed, [(r.check, r.target.name, r.summary) for r in crashed]
    assert slowest <= limit_ms, sorted({(r.check, r.target.name.rsplit("-", 1)[0], r.summary)
                                        for r in hostile if r.duration_ms > limit_ms})
    by_target: dict[str, list[Result]] = {}
    for r in hostile:
        by_target.setdefault(r.target.name, []).append(r)
    assert set(by_target) == hostile_names
    for name, rs in by_target.items():
        assert any(r.status is not Status.OK for r in rs), (name, [r.summary for r in rs])
    assert growth < 150 * 2**20, f"RSS grew {growth / 2**20:.0f} MiB"
    assert all(w < 350 for w in workers), f"a worker peaked at {max(workers):.0f} MiB"
    # A check whose own timeout is far above the test's 3 s (dns.declared: 60 s, ~1 s of work
    # alone) may miss the shortened deadline while 970 probes share two cores: an error, or a
    # full TLS scan that left a step untested for the deadline (in either sweep), so grading
    # fewer criteria. Any other change of a healthy verdict would be hostile targets leaking
    # into healthy ones.
    checks = select_checks()
    cut = {(r.check, r.target.name) for r in [*alone, *results]
           if "probe deadline reached" in json.dumps(r.evidence, default=str)}
    starved = [c for c in changed if checks[c[0]].meta.timeout > TIMEOUT
               and (c[3] == "error" or c[:2] in cut)]
    print(f"  of which deadline errors of checks whose own timeout the test cut to "
          f"{TIMEOUT:g} s: {[c[:2] for c in starved]}")
    assert [c for c in changed if c not in starved] == []


def _durations(results: list[Result]) -> dict[tuple[str, str], float]:
    return {(r.check, r.target.key): r.duration_ms for r in results}


def _paired(after: dict[tuple[str, str], float], before: dict[tuple[str, str], float]
            ) -> list[tuple[str, float]]:
    """Per probe (the same check on the same target, in the same round): the check, and the
    probe's duration in `after` over its duration in `before`."""
    return [(k[0], after[k] / before[k]) for k in sorted(after.keys() & before.keys())
            if before[k] > 0]


def _per_check(pairs: list[tuple[str, float]]) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for check, ratio in pairs:
        by.setdefault(check, []).append(ratio)
    return {check: statistics.median(ratios) for check, ratios in by.items()}


def test_hostile_neighbours_do_not_slow_healthy_probes(setup: Setup) -> None:
    """Healthy probe latency alone vs while the 100 hostile targets are swept by the same
    process. The healthy targets are a second lab's (servers of their own, as healthy and
    hostile servers are in a fleet), swept with concurrency 2, so the figure is probe latency
    and not the lab's throughput under a burst (with 100 probes at once the lab, one Python
    process, is the bottleneck and the medians swing by 30 % between identical sweeps).

    The figure is paired: each healthy probe (a check on a target) is compared with itself
    swept alone in the same round, and the median of those ratios is the change. A median of
    all durations pooled mixes sub-millisecond DNS probes with multi-millisecond HTTPS ones,
    so it jumps when a few probes cross between the two groups: between two identical sweeps
    it moved by up to 30 %, against 5 % for the paired median. A third sweep per round, alone
    again, is the control: its paired median against the first shows the method's noise.
    Without the TLS scans (SCANS) the healthy sweep fits inside the hostile one (7 s in 12 s;
    with them it was 22 s, mostly after the hostile sweep had ended)."""
    gentle = setup.apart_fleet.model_copy(update={
        "probe": setup.apart_fleet.probe.model_copy(update={"concurrency": 2})})
    _sweep(gentle, setup.apart, scans=False)
    mixed_pairs: list[tuple[str, float]] = []
    null_pairs: list[tuple[str, float]] = []
    pooled: dict[str, list[float]] = {"alone": [], "mixed": []}
    for i in range(ROUNDS):
        # Rotate the order: the lab slows a little as its hung requests pile up, and that
        # drift must not be read as an effect of the hostile neighbours.
        order = ["alone", "mixed", "again"]
        order = order[i % 3:] + order[:i % 3]
        took: dict[str, dict[tuple[str, str], float]] = {}
        for kind in order:
            if kind != "mixed":
                took[kind] = _durations(_sweep(gentle, setup.apart, scans=False)[0])
                continue
            box: dict[str, float] = {}
            hostile = threading.Thread(
                target=lambda: box.update(secs=_sweep(setup.fleet, setup.hostile)[1]))
            hostile.start()
            results, secs = _sweep(gentle, setup.apart, scans=False)
            hostile.join()
            took[kind] = _durations(results)
        mixed, null = _paired(took["mixed"], took["alone"]), _paired(took["again"], took["alone"])
        mixed_pairs += mixed
        null_pairs += null
        pooled["alone"] += took["alone"].values()
        pooled["mixed"] += took["mixed"].values()
        print(f"round {i + 1}: paired median {statistics.median(r for _, r in mixed):.3f} beside "
              f"the hostile sweep, {statistics.median(r for _, r in null):.3f} alone again "
              f"(healthy sweep {secs:.1f} s inside a {box['secs']:.1f} s hostile sweep)")
    mixed_ratios, null_ratios = [r for _, r in mixed_pairs], [r for _, r in null_pairs]
    ratio, noise = statistics.median(mixed_ratios), statistics.median(null_ratios)
    slowed = sum(r > 1.5 for r in mixed_ratios) / len(mixed_ratios)
    slowed_null = sum(r > 1.5 for r in null_ratios) / len(null_ratios)
    checks, checks_null = _per_check(mixed_pairs), _per_check(null_pairs)
    most = sorted(checks, key=checks.__getitem__, reverse=True)[:4]
    m_alone, m_mixed = statistics.median(pooled["alone"]), statistics.median(pooled["mixed"])
    print(f"healthy probes over {ROUNDS} rounds ({len(mixed_ratios)} pairs): paired median "
          f"ratio {ratio:.3f} beside the hostile sweep, {noise:.3f} alone again (the noise); "
          f"slowed > 1.5x: {slowed:.1%} beside, {slowed_null:.1%} alone again; pooled medians "
          f"alone {m_alone:.1f} ms, beside {m_mixed:.1f} ms ({m_mixed / m_alone:.3f})")
    print(f"per check ({len(checks)}): median of the checks' paired medians "
          f"{statistics.median(checks.values()):.3f} beside, "
          f"{statistics.median(checks_null.values()):.3f} alone again; most slowed: "
          + ", ".join(f"{c} {checks[c]:.2f} ({checks_null.get(c, 1):.2f} alone again)"
                      for c in most))
    assert abs(ratio - 1) < LATENCY_TOLERANCE, f"healthy latency ratio {ratio:.3f}"
