"""`dns.dnssec.valid` agrees with a real validating resolver (Unbound) on signed and bogus zones.

The check validates the chain itself from `[probe] trust_anchors`, while mail.dane and every
sender trust the resolver's AD bit; both must tell the same story. The fleet's resolver here is
the validating Unbound, as in service, and its trust anchors are the ones the check reads.
"""

from __future__ import annotations

import dns.flags
import dns.rcode
import pytest

from tests.servers.powerdns import PowerDNS
from tests.servers.unbound import Unbound
from watchtower.config import parse_fleet
from watchtower.model import Result
from watchtower.probe.sweep import run_sweep, select_checks

GOOD = "good.dnssecub.test"
REKEYED = "rekeyed.dnssecub.test"


def _zone(pdns: PowerDNS, zone: str) -> None:
    records = [("ns1", "A", 300, "127.0.0.1"), ("@", "TXT", 300, '"hello"')]
    pdns.recreate_zone(zone, [f"ns1.{zone}."], records, dnssec=True)


@pytest.fixture(scope="module")
def zones(powerdns: PowerDNS, unbound: Unbound) -> Unbound:
    """GOOD signed and anchored; REKEYED anchored, then given new keys (bogus)."""
    for zone in (GOOD, REKEYED):
        _zone(powerdns, zone)
        unbound.add_powerdns_zone(powerdns, zone, anchored=True)
    powerdns.pdnsutil("disable-dnssec", REKEYED)
    powerdns.secure_zone(REKEYED)
    unbound.flush(REKEYED)
    return unbound


def _resolver_says(unbound: Unbound, zone: str) -> str:
    msg = unbound.query(zone, "SOA")
    if msg.rcode() == dns.rcode.SERVFAIL:
        return "bogus"
    return "secure" if msg.flags & dns.flags.AD else "insecure"


def _check(unbound: Unbound, powerdns: PowerDNS, zone: str) -> Result:
    fleet = parse_fleet({
        "probe": {"nameservers": [unbound.server], "authoritative_port": powerdns.dns_port, "dns_timeout": 3.0, "trust_anchors": str(unbound.anchors_file)},
        "zones": [{"name": zone}],
    })
    outcome = run_sweep(fleet, None, select_checks(["dns.dnssec.valid"]))
    (result,) = outcome.of("dns.dnssec.valid")
    return result


def test_signed_zone_is_secure_for_both(zones: Unbound, powerdns: PowerDNS) -> None:
    assert _resolver_says(zones, GOOD) == "secure"
    result = _check(zones, powerdns, GOOD)
    assert str(result.status) == "ok", (result.summary, [f.message for f in result.findings])


def test_rekeyed_zone_is_bogus_for_both(zones: Unbound, powerdns: PowerDNS) -> None:
    assert _resolver_says(zones, REKEYED) == "bogus"
    result = _check(zones, powerdns, REKEYED)
    assert str(result.status) == "fail", (result.summary, [f.message for f in result.findings])
    assert "bogus" in result.summary
