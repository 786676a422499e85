"""Benchmark: probe rate of Prometheus blackbox_exporter vs watchtower on the same lab targets.

Both probe the same lab (its own process) side by side in one run: a DNS probe per mail domain
(its TLS-RPT TXT record, `_smtp._tls.DOMAIN`, asked of the lab's name server) and an HTTPS GET
per web endpoint, TLS verified against the lab CA. blackbox_exporter (Debian
`prometheus-blackbox-exporter`) is driven through its `/probe` endpoint as fast as
`--concurrency` clients can; watchtower runs its equivalent checks with the same concurrency:
`mail.tls-rpt` (one TXT question, parsed and judged) and `web.headers` (one GET, judged).
Equivalent means the same wire work: `dns.caa`, which the first version of this benchmark
used, walks the CAA tree of every web host and handshakes with each (~15 exchanges to
blackbox's one). Target: watchtower's probes/s >= 1.0x.

    .venv/bin/python bench/bench_blackbox.py [--domains 300] [--concurrency 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._lab import lab_cpu_seconds, lab_process, summary
from watchtower.config import load_fleet
from watchtower.config.operations import CheckOverride
from watchtower.probe import registry, workers
from watchtower.probe.api import Check
from watchtower.probe.sweep import run_sweep, select_checks

CHECKS = ("mail.tls-rpt", "web.headers")


def prerequisites(checks: dict[str, Check]) -> set[str]:
    """Every check the given ones stand on, however deep (CheckMeta.needs)."""
    known, out = registry.checks(), set()
    todo = [n for c in checks.values() for n in c.meta.needs]
    while todo:
        need = todo.pop()
        if need not in out:
            out.add(need)
            todo += known[need].meta.needs
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def blackbox_config(path: Path, zones: list[str], hosts: list[str], https_port: int,
                    ca: str) -> None:
    """One module per zone and per host: the exporter takes `query_name`, the Host header and
    the TLS server name only from its configuration, and it resolves target names with the
    system resolver (which does not know the lab), so HTTP probes go to 127.0.0.1 with the
    host's name as Host and SNI, verified against the lab CA."""
    lines = ["modules:"]
    for z in zones:
        lines += [f"  dns_{z}:", "    prober: dns", "    timeout: 5s", "    dns:",
                  f"      query_name: _smtp._tls.{z}", "      query_type: TXT",
                  "      transport_protocol: udp", "      preferred_ip_protocol: ip4"]
    for h in hosts:
        lines += [f"  http_{h}:", "    prober: http", "    timeout: 5s", "    http:",
                  "      preferred_ip_protocol: ip4", "      follow_redirects: false",
                  # A lab front page may answer 404 or 400: still a full round trip, as
                  # watchtower's web.headers makes; only a failed exchange is a failure.
                  "      valid_status_codes: [200, 301, 302, 400, 403, 404]",
                  "      headers:", f"        Host: {h}:{https_port}", "      tls_config:",
                  f"        ca_file: {ca}", f"        server_name: {h}"]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3,
                    help="probe every target this many times on each side (fresh connections "
                         "and caches each watchtower sweep)")
    args = ap.parse_args()
    exe = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if exe is None:
        print("BENCH blackbox: SKIPPED (prometheus-blackbox-exporter not installed)")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-bb-") as tmp:
        base = Path(tmp)
        with lab_process(base / "lab", args.domains) as fleet_path:
            fleet = load_fleet(fleet_path, registry.check_ids_and_families())
            dns_port = fleet.probe.authoritative_port
            https_port = fleet.probe.https_port
            ca = str(fleet.probe.ca_bundle)
            targets = fleet.targets()
            checks = dict(select_checks(list(CHECKS)))
            zones = [t.name for t in targets if checks["mail.tls-rpt"].applies(t)]
            hosts = sorted({t.name.rsplit(":", 1)[0] for t in targets
                            if checks["web.headers"].applies(t)})
            cfg = base / "blackbox.yml"
            blackbox_config(cfg, zones, hosts, https_port, ca)
            port = free_port()
            proc = subprocess.Popen([exe, f"--config.file={cfg}",
                                     f"--web.listen-address=127.0.0.1:{port}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                bb = f"http://127.0.0.1:{port}"
                for _ in range(100):
                    try:
                        if requests.get(bb + "/-/healthy", timeout=1).ok:
                            break
                    except requests.RequestException:
                        time.sleep(0.1)
                probes = [(f"dns_{z}", f"127.0.0.1:{dns_port}") for z in zones]
                probes += [(f"http_{h}", f"https://127.0.0.1:{https_port}/") for h in hosts]
                session_local = requests.Session()

                def probe(item: tuple[str, str]) -> bool:
                    module, target = item
                    r = session_local.get(bb + "/probe", params={"module": module,
                                                               "target": target}, timeout=30)
                    return "probe_success 1" in r.text

                t0, lab0 = time.monotonic(), lab_cpu_seconds(base / "lab")
                with ThreadPoolExecutor(args.concurrency) as pool:
                    ok = sum(pool.map(probe, probes * args.rounds))
                bb_s = time.monotonic() - t0
                bb_lab = lab_cpu_seconds(base / "lab") - lab0
            finally:
                proc.terminate()
                proc.wait(10)
            wt_jobs = [t for t in targets if any(c.applies(t) for c in checks.values())]
            fleet = fleet.model_copy(update={"probe": fleet.probe.model_copy(
                update={"concurrency": args.concurrency})})
            workers.prestart()  # as `watchtower run` does at start-up
            # A sweep runs each check's prerequisites first (web.headers stands on
            # web.tls.certificate, mail.tls-rpt on the zone's NS checks): wire work blackbox
            # does not do. Equal work: those disabled, as a fleet file can.
            equal = fleet.model_copy(update={"checks": {
                **fleet.checks, **{need: CheckOverride(disabled=True) for need in
                                   prerequisites(checks)}}})
            lab0 = lab_cpu_seconds(base / "lab")
            outcomes = [run_sweep(equal, None, checks, targets=wt_jobs)
                        for _ in range(args.rounds)]
            wt_lab = lab_cpu_seconds(base / "lab") - lab0
            wt_s = sum(o.seconds for o in outcomes)
            wt_n = sum(len(o.results) for o in outcomes)
            staged = run_sweep(fleet, None, checks, targets=wt_jobs)
        bb_rate = len(probes) * args.rounds / bb_s
        wt_rate = wt_n / wt_s
        print(f"# {args.domains} domains x {args.rounds} rounds: blackbox "
              f"{len(probes) * args.rounds} probes ({ok} succeeded) in {bb_s:.2f} s; watchtower "
              f"{wt_n} checks ({outcomes[-1].counts()} in the last round) in {wt_s:.2f} s "
              f"over {outcomes[-1].processes} process(es); concurrency {args.concurrency}",
              flush=True)
        summary("blackbox.exporter_rate", bb_rate, "probes/s")
        summary("blackbox.watchtower_rate", wt_rate, "probes/s")
        summary("blackbox.ratio", wt_rate / bb_rate, "x", 1.0, higher_is_better=True)
        summary("blackbox.watchtower_rate_with_prerequisites",
                len(staged.results) / staged.seconds, "checks/s",
                note=f"one round as a sweep runs it: {len(staged.results)} checks in "
                     f"{staged.stages} stages, prerequisites first")
        # The lab serves both sides: its CPU per probe says whether it, not the prober, bounds.
        summary("lab.cpu_per_probe.blackbox", bb_lab * 1000 / max(1, len(probes) * args.rounds),
                "ms")
        summary("lab.cpu_per_probe.watchtower", wt_lab * 1000 / max(1, wt_n), "ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
