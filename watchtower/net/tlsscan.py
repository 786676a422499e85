"""Full TLS scans of one server (HTTPS, or SMTP after STARTTLS) with sslyze, for the NCSC-NL
criteria.

Why sslyze: grading a server by the NCSC-NL guidelines means asking for every protocol version
from SSL 2.0 to TLS 1.3, every cipher suite of the highest version below 1.3 and of 1.3, the
key-exchange groups, client-initiated renegotiation, compression and 0-RTT. Python's ssl module
links the system OpenSSL, which can neither speak SSL 2.0/3.0 nor (at Debian's security level)
offer most legacy suites, and cannot inspect ephemeral keys or the stapled OCSP response.
sslyze (with nassl, which ships two OpenSSL builds of its own: a modern one and a legacy 1.0.2
that still speaks SSL 2.0/3.0 and TLS 1.0/1.1 with the old suites) is the well-kept library
that does this; hand-written cipher enumeration over raw ClientHellos would be a second,
worse TLS stack. The one exception is the version probe (`watchtower.net.tlshello`), asked of
every endpoint by the light checks too: whether a version is accepted is the ServerHello's
first bytes, which need no TLS stack to read, and a sixth of the CPU of a handshake.

How: no sslyze `Scanner` (its thread pool would hide the scan's CPU cost and ignore our
deadline). The scan resolves the address through watchtower's resolver, then runs sslyze's
plugins' scan jobs one by one in the calling thread, each connection bounded by what is left
of the probe's deadline; a step the deadline cuts is recorded as not tested. `cpu_seconds`
(this thread's CPU time) is kept on the result, logged per scan, and left out of the
evidence, which must stay equal between equal scans for the store's streaks.

One scan per (host, address, port, STARTTLS) per sweep: the sweep's scanner (`ctx.tls_scan`,
built by watchtower/probe/clients.py) shares its results with every check that reads them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from watchtower.errors import ProbeTimeout
from watchtower.net.dns import Resolver
from watchtower.net.shared import SharedCalls
from watchtower.net.tls import first_address
from watchtower.net.tlsscan_result import TlsScan

log = logging.getLogger(__name__)

#: Cap on one connection's socket timeout (seconds); the probe deadline may cut it shorter.
CONNECTION_TIMEOUT = 8.0
def same_rank(_name: str) -> int:
    """Every suite alike: the cipher-order probe is then skipped (nothing is worse)."""
    return 0


class TlsScanner:
    """Full scans through the fleet's resolver; one result per server per scanner (sweep)."""

    def __init__(self, resolver: Resolver, *, ca_bundle: str | None = None,
                 timeout: float = CONNECTION_TIMEOUT, helo: str | None = None) -> None:
        self.resolver = resolver
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.helo = helo
        self._memo = SharedCalls(keep_errors=False)

    def versions(self, host: str, port: int, *, deadline: float | None,
                 address: str | None = None, starttls: str | None = None) -> dict[str, bool]:
        """Which protocol versions complete a handshake (the light part of a scan)."""
        return dict(self._versions(host, port, address, starttls, deadline).versions)

    def scan(self, host: str, port: int, *, deadline: float | None, address: str | None = None,
             starttls: str | None = None, web: bool = True,
             cipher_rank: Callable[[str], int] = same_rank) -> TlsScan:
        """Every NCSC-NL criterion's facts for one server; shared within the sweep. Version
        detection is the same (shared) step `versions` runs. `cipher_rank` orders suites
        worst first (lower first) for the cipher-order probe: which suite is worse is the
        caller's judgement (watchtower/compliance/ncsc_tls.py), not this client's."""
        probe = self._versions(host, port, address, starttls, deadline)
        key = ("scan", host.lower(), probe.address, port, starttls, web)
        result: TlsScan = self._memo.get(
            key, lambda: self._full(probe, deadline, web, cipher_rank))
        return result

    def _versions(self, host: str, port: int, address: str | None, starttls: str | None,
                  deadline: float | None) -> TlsScan:
        from watchtower.net import _sslyze_steps as steps  # sslyze is imported on first use

        addr = address or self._address(host, deadline)

        def detect() -> TlsScan:
            scan = TlsScan(host, port, addr, starttls)
            with self._measured(scan):
                steps.detect_versions(self._session(steps, scan, deadline))
            return scan

        result: TlsScan = self._memo.get(("versions", host.lower(), addr, port, starttls),
                                         detect)
        return result

    def _full(self, probe: TlsScan, deadline: float | None, web: bool,
              cipher_rank: Callable[[str], int] = same_rank) -> TlsScan:
        from watchtower.net import _sslyze_steps as steps

        scan = dataclasses.replace(probe, versions=dict(probe.versions), ciphers={}, notes={},
                                   untested={})
        with self._measured(scan):
            if any(scan.versions.values()):
                steps.full_scan(self._session(steps, scan, deadline, cipher_rank), web=web)
        log.info("full tls scan %s:%s (%s)%s: %.3f s CPU, %d connections, %.2f s%s",
                 scan.host, scan.port, scan.address,
                 f" starttls={scan.starttls}" if scan.starttls else "", scan.cpu_seconds,
                 scan.connections, scan.elapsed_seconds,
                 "".join(f"; {k}: {v}" for k, v in scan.notes.items()))
        return scan

    def _session(self, steps: Any, scan: TlsScan, deadline: float | None,
                 cipher_rank: Callable[[str], int] | None = None) -> Any:
        return steps.Session(scan, self._budget(deadline), helo=self.helo,
                             ca_bundle=self.ca_bundle, cipher_rank=cipher_rank or same_rank)

    @contextlib.contextmanager
    def _measured(self, scan: TlsScan) -> Iterator[None]:
        """Adds this thread's CPU time and the wall time of the block to the scan's totals."""
        cpu0, t0 = time.thread_time(), time.monotonic()
        try:
            yield
        finally:
            scan.cpu_seconds = round(scan.cpu_seconds + time.thread_time() - cpu0, 4)
            scan.elapsed_seconds = round(scan.elapsed_seconds + time.monotonic() - t0, 3)

    def _address(self, host: str, deadline: float | None) -> str:
        return first_address(self.resolver, host, deadline)

    def _budget(self, deadline: float | None) -> Callable[[], float]:
        """Seconds the next connection may take: the cap, or what the deadline leaves."""

        def left() -> float:
            if deadline is None:
                return self.timeout
            remaining = deadline - time.monotonic()
            if remaining <= 0.5:
                raise ProbeTimeout("probe deadline reached during the TLS scan")
            return min(self.timeout, remaining)

        return left
