"""Benchmark: CPU per full NCSC-NL TLS scan (web.tls.ncsc's scan), against an anchor run side
by side: sslyze's own Scanner running the comparable scan commands on the same server.

Starts Debian's nginx with two of the test cases (tests/servers/tls_cases.py: "good", TLS 1.2
and 1.3 with few suites; "legacy", TLS 1.0 to 1.2 with more suites), then for each: `--runs`
full scans with watchtower's TlsScanner (each a fresh scanner: nothing shared), CPU as this
process's CPU time (watchtower's scan runs in the calling thread; the anchor's in sslyze's
thread pool, so process time is the fair measure for both). The anchor scans every version's
suites (watchtower only the highest below 1.3 and 1.3, as internet.nl), so the ratio also
shows what that choice saves.

    .venv/bin/python bench/bench_tlsscan.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import tls_cases
from tests.servers.nginx import Nginx
from tests.servers.pki import TestPKI
from watchtower.compliance.ncsc_tls import worst_cipher_first
from watchtower.net.tlsscan import TlsScanner

CASES = ("good", "legacy")


class _Loopback:
    """The scanner's resolver: every case's name is 127.0.0.1."""

    def addresses(self, host: str, deadline: float | None = None) -> list[str]:
        return ["127.0.0.1"]


def ours(host: str, port: int, ca: Path) -> tuple[float, int]:
    scanner = TlsScanner(_Loopback(), ca_bundle=str(ca))  # type: ignore[arg-type]
    cpu = time.process_time()
    scan = scanner.scan(host, port, deadline=time.monotonic() + 120,
                        cipher_rank=worst_cipher_first)
    return time.process_time() - cpu, scan.connections


def anchor(host: str, port: int) -> float:
    from sslyze import (
        ScanCommand,
        Scanner,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
    )

    commands = {ScanCommand.SSL_2_0_CIPHER_SUITES, ScanCommand.SSL_3_0_CIPHER_SUITES,
                ScanCommand.TLS_1_0_CIPHER_SUITES, ScanCommand.TLS_1_1_CIPHER_SUITES,
                ScanCommand.TLS_1_2_CIPHER_SUITES, ScanCommand.TLS_1_3_CIPHER_SUITES,
                ScanCommand.TLS_COMPRESSION, ScanCommand.SESSION_RENEGOTIATION,
                ScanCommand.TLS_1_3_EARLY_DATA, ScanCommand.TLS_EXTENDED_MASTER_SECRET}
    request = ServerScanRequest(
        server_location=ServerNetworkLocation(hostname=host, port=port, ip_address="127.0.0.1"),
        network_configuration=ServerNetworkConfiguration(tls_server_name_indication=host),
        scan_commands=commands)
    cpu = time.process_time()
    scanner = Scanner()
    scanner.queue_scans([request])
    for _ in scanner.get_results():
        pass
    return time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = TestPKI(Path(tmp) / "pki")
        sites = [s for s in tls_cases.sites(pki, Path(tmp)) if s.name in CASES]
        with Nginx(Path(tmp) / "nginx", sites) as nginx:
            for case in CASES:
                site = nginx.site(case)
                runs: list[Any] = [ours(site.host, site.port, pki.ca_path)
                                   for _ in range(args.runs)]
                cpu = statistics.median(r[0] for r in runs)
                base = statistics.median(anchor(site.host, site.port) for _ in range(args.runs))
                print(f"BENCH tls full scan CPU, {case} ({runs[0][1]} connections): "
                      f"{cpu * 1000:.0f} ms vs sslyze Scanner {base * 1000:.0f} ms "
                      f"(ratio {cpu / base:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
