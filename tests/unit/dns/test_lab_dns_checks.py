"""Every dns.* check against the lab's pure-Python DNS with each DNS fault switched on.

The lab is the demo: this proves each fault is seen by the check meant to see it, that healthy
zones stay `ok` across the board, and that bad input (CNAME loops, non-ASCII names, a dead
server) ends in a verdict or an `error`, never a crash.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchtower.config import Fleet, load_fleet, parse_fleet
from watchtower.lab import Lab
from watchtower.model import Result, Target, TargetKind
from watchtower.probe import registry
from watchtower.probe.clients import SweepClients
from watchtower.probe.runner import Job, execute

FAULTS = {
    "bravo.test": {"lame-ns", "bad-soa-timers", "no-caa"},
    "charlie.test": {"open-recursion", "no-ipv6", "unsigned"},
    "delta.test": {"open-axfr", "serial-mismatch", "rrsig-expiring"},
}
DNS_CHECKS = sorted(c for c in registry.checks() if c.startswith("dns."))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("dnslab"), domains=4, faults=FAULTS,
              metrics_listen="127.0.0.1:0")
    lab.start()
    yield lab
    lab.stop()


@pytest.fixture(scope="module")
def results(lab: Lab) -> dict[tuple[str, str], Result]:
    fleet = load_fleet(lab.fleet_path)
    return {(t.name, cid): r for t, cid, r in _run(fleet, DNS_CHECKS)}


def _run(fleet: Fleet, check_ids: list[str], targets: list[Target] | None = None
         ) -> list[tuple[Target, str, Result]]:
    checks = registry.checks()
    sweep = SweepClients(fleet)
    out = []
    try:
        for target in targets or [t for t in fleet.targets() if t.kind is TargetKind.ZONE]:
            for cid in check_ids:
                if not checks[cid].applies(target):  # as the runner does (dns.octodns)
                    continue
                ctx = sweep.context(time.monotonic() + 20)
                out.append((target, cid, execute(Job(checks[cid], target, 20.0), ctx)))
    finally:
        sweep.close()
    return out


def test_healthy_zone_is_ok_everywhere(results: dict[tuple[str, str], Result]) -> None:
    bad = {cid: r.summary for (zone, cid), r in results.items()
           if zone == "alpha.test" and str(r.status) != "ok"}
    assert not bad


@pytest.mark.parametrize(("zone", "check_id", "status", "fragment"), [
    ("bravo.test", "dns.ns.authoritative", "fail", "REFUSED"),
    ("bravo.test", "dns.soa.timers", "warn", "ZONE02"),
    ("bravo.test", "dns.caa", "warn", "no CAA"),
    ("charlie.test", "dns.ns.open-recursion", "fail", "offers recursion"),
    ("charlie.test", "dns.ipv6", "fail", "0 of 3"),
    ("charlie.test", "dns.dnssec.valid", "fail", "unsigned"),
    ("delta.test", "dns.ns.axfr", "fail", "transferred the whole zone"),
    ("delta.test", "dns.ns.consistency", "warn", "serials differ"),
    ("delta.test", "dns.dnssec.expiry", "fail", "< 2 days"),
])
def test_each_fault_is_seen(results: dict[tuple[str, str], Result], zone: str, check_id: str,
                            status: str, fragment: str) -> None:
    r = results[(zone, check_id)]
    assert str(r.status) == status, r.summary
    assert fragment in r.summary


def test_checks_share_one_dns_cache(lab: Lab) -> None:
    fleet = load_fleet(lab.fleet_path)
    sweep = SweepClients(fleet)
    checks = registry.checks()
    target = next(t for t in fleet.targets() if t.name == "alpha.test")
    # dns.declared asks each server for every declared record: questions no other check
    # shares, so it would only dilute the ratio this test is about.
    for cid in (c for c in DNS_CHECKS if c != "dns.declared"):
        execute(Job(checks[cid], target, 20.0), sweep.context(time.monotonic() + 20))
    stats = sweep.dns.cache_stats
    sweep.close()
    assert stats["hits"] > stats["misses"]


def test_bad_input_ends_in_a_verdict(lab: Lab) -> None:
    fleet = load_fleet(lab.fleet_path)
    doc = fleet.model_dump(by_alias=True, exclude_none=True)
    doc["zones"] = [{"name": "bücher.test"}, {"name": "nope.test"}]
    for key in ("mail_domains", "services", "endpoints"):
        doc[key] = []
    odd = parse_fleet(doc)
    for target, cid, r in _run(odd, DNS_CHECKS):
        assert str(r.status) in ("ok", "warn", "fail", "error"), (target.name, cid)
        assert r.summary, (target.name, cid)


def test_dead_resolver_is_an_error_quickly(tmp_path: Path) -> None:
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        fleet = parse_fleet({"probe": {"nameservers": [f"127.0.0.1:{sock.getsockname()[1]}"], "dns_timeout": 0.3},
                             "zones": [{"name": "example.test"}]})
        started = time.monotonic()
        results = _run(fleet, DNS_CHECKS)
        assert {str(r.status) for _, _, r in results} == {"error"}
        assert time.monotonic() - started < 5  # one cached timeout per question
    finally:
        sock.close()
