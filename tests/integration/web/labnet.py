"""A small loopback network for web/fedi/matrix/storage integration tests: the lab's DNS server
with one zone, a private CA (LabCA), the lab's HTTPS/HTTP front with stand-in apps, and a fleet
built to point at them. Checks then run through the real runner, network seam and resolver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.zone

from watchtower.config import Fleet, parse_fleet
from watchtower.lab.ca import LabCA
from watchtower.lab.dnsserver import DnsServer
from watchtower.lab.https import WebFront, WsgiApp
from watchtower.model import Result, Target
from watchtower.probe.api import Check
from watchtower.probe.clients import SweepClients
from watchtower.probe.runner import Job, execute

ZONE = "example.test"


@dataclass
class LabNet:
    directory: Path
    ca: LabCA
    dns: DnsServer
    web: WebFront
    hosts: list[str] = field(default_factory=list)
    zone_lines: list[str] = field(default_factory=list)

    def add_records(self, *lines: str) -> None:
        """Add records (zone-file lines relative to example.test) while the server runs."""
        self.zone_lines += lines
        self.dns.set_zones("127.0.0.1", [_zone(self.zone_lines)])

    def fleet(self, **sections: Any) -> Fleet:
        probe = {"nameservers": [f"127.0.0.1:{self.dns.port}"], "ca_bundle":
                    str(self.ca.cert_path), "https_port": self.web.https_port,
                    "http_port": self.web.http_port, "http_timeout": 3.0, "dns_timeout": 2.0}
        probe.update(sections.pop("probe", {}))
        return parse_fleet({"probe": probe, **sections})

    def url(self, host: str, path: str = "/") -> str:
        return f"https://{host}:{self.web.https_port}{path}"


def run_check(fleet: Fleet, check: Check, target: Target, timeout: float = 8.0) -> Result:
    sweep = SweepClients(fleet)
    try:
        return execute(Job(check, target, timeout), sweep.context(time.monotonic() + timeout))
    finally:
        sweep.close()


def target_of(fleet: Fleet, name: str, kind: str | None = None) -> Target:
    found = [t for t in fleet.targets() if t.name == name and (kind is None or t.kind == kind)]
    assert found, f"no target {name}: {[t.name for t in fleet.targets()]}"
    return found[0]


@contextmanager
def labnet(directory: Path, sites: dict[str, WsgiApp], *, extra_records: list[str] = (),  # type: ignore[assignment]
           http_sites: dict[str, WsgiApp] | None = None,
           bad_certs: dict[str, str] | None = None) -> Iterator[LabNet]:
    """Serve `sites` (host -> WSGI app) under a fresh CA; every host resolves to 127.0.0.1."""
    ca = LabCA(directory / "ca")
    web = WebFront("127.0.0.1", 0, 0)
    for host, app in sites.items():
        kind = (bad_certs or {}).get(host)
        issued = ca.issue([host], self_signed=True) if kind == "untrusted" else ca.issue([host])
        web.add_site(host, str(issued.cert_path), str(issued.key_path), app,
                     (http_sites or {}).get(host))
    labels = {h[: -len(ZONE) - 1] or "@" for h in sites if h.endswith(ZONE)}
    lines = [f"$ORIGIN {ZONE}.", "$TTL 300", "@ IN SOA ns1 hostmaster 1 14400 3600 1209600 300",
             "@ IN NS ns1", "ns1 IN A 127.0.0.1",
             *(f"{label} IN A 127.0.0.1" for label in sorted(labels) if label != "ns1"),
             *extra_records]
    server = DnsServer(["127.0.0.1"], 0)
    server.set_zones("127.0.0.1", [_zone(lines)])
    server.start()
    web.start()
    try:
        yield LabNet(directory, ca, server, web, list(sites), lines)
    finally:
        web.stop()
        server.stop()


def _zone(lines: list[str]) -> dns.zone.Zone:
    return dns.zone.from_text("\n".join(lines) + "\n", origin=ZONE + ".", relativize=False)
