"""dns.* checks gathering from real PowerDNS Authoritative servers (two instances).

Layout: `powerdns` (127.0.0.1) is both the fleet's resolver and the first name server of every
zone; `powerdns2` (127.0.0.2, same port) the second. `test.` is a signed parent on the first
server holding the DS of `signed.test.`; its DS, exported by pdnsutil, is the trust anchor. A
UDP socket on 127.0.0.3 that reads and never replies plays the dead name server.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers.powerdns import PowerDNS
from watchtower.config import parse_fleet
from watchtower.model import Result
from watchtower.net.dns import Resolver
from watchtower.probe import registry
from watchtower.probe.clients import SweepClients
from watchtower.probe.runner import Job, execute

SILENT = "127.0.0.3"


def ns_records(zone: str, *addresses: str) -> list[tuple[str, str, int, str]]:
    return [(f"ns{i}.{zone}.", "A", 3600, a) for i, a in enumerate(addresses, 1)]


@pytest.fixture(scope="module")
def world(powerdns: PowerDNS, powerdns2: PowerDNS, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[str, Any]]:
    if powerdns2.dns_port != powerdns.dns_port:
        pytest.skip("127.0.0.2 cannot share the first server's DNS port")
    both = ["ns1.{z}.", "ns2.{z}."]

    def create(server: PowerDNS, zone: str, ns: list[str], records: list[Any], **kw: Any
               ) -> None:
        if f"{zone}." in server.list_zones():
            server.delete_zone(zone)
        server.create_zone(zone, [n.format(z=zone) for n in ns], records, **kw)

    good = [*ns_records("good.test", "127.0.0.1", "127.0.0.2"),
            ("@", "CAA", 3600, '0 issue "letsencrypt.org"')]
    for server in (powerdns, powerdns2):
        create(server, "good.test", both, good)
        create(server, "serial.test", both, ns_records("serial.test", "127.0.0.1", "127.0.0.2"))
        create(server, "nsdiff.test", both + (["ns3.{z}."] if server is powerdns2 else []),
               ns_records("nsdiff.test", "127.0.0.1", "127.0.0.2", "127.0.0.1"))
    # SOA-EDIT-API bumps the serial on every change: two changes on the first server only.
    for text in ('"one"', '"two"'):
        powerdns.replace_rrset("serial.test", "@", "TXT", 3600, [text])
    create(powerdns, "lame.test", both, ns_records("lame.test", "127.0.0.1", "127.0.0.2"))
    create(powerdns, "silent.test", ["ns1.{z}."], ns_records("silent.test", SILENT))
    create(powerdns, "signed.test", ["ns1.{z}."], ns_records("signed.test", "127.0.0.1"),
           dnssec=True)
    create(powerdns, "unsigned.test", ["ns1.{z}."], ns_records("unsigned.test", "127.0.0.1"))
    create(powerdns, "nsec3.test", ["ns1.{z}."], ns_records("nsec3.test", "127.0.0.1"),
           dnssec=True)
    powerdns.set_nsec3("nsec3.test", "1 0 10 abcd")
    create(powerdns, "test", ["ns1.{z}."], [
        ("ns1.test.", "A", 3600, "127.0.0.1"),
        *((f"{z}.test.", "NS", 3600, f"ns1.{z}.test.") for z in ("signed", "unsigned")),
        *(("signed.test.", "DS", 3600, ds.split(" DS ", 1)[1])
          for ds in powerdns.export_ds("signed.test")),
    ], dnssec=True)
    powerdns.purge()
    anchors = tmp_path_factory.mktemp("anchors") / "anchors.zone"
    anchors.write_text("\n".join(powerdns.export_ds("test")) + "\n")
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((SILENT, powerdns.dns_port))
    yield {"port": powerdns.dns_port, "anchors": anchors}
    silent.close()


def run(world: dict[str, Any], check_id: str, zone: str, **zone_opts: Any) -> Result:
    fleet = parse_fleet({
        "probe": {"nameservers": [f"127.0.0.1:{world['port']}"], "authoritative_port": world["port"], "dns_timeout": 0.5, "trust_anchors": str(world["anchors"])},
        "zones": [{"name": zone, **zone_opts}],
    })
    target = next(t for t in fleet.targets() if t.name == zone)
    check = registry.checks()[check_id]
    sweep = SweepClients(fleet)
    try:
        return execute(Job(check, target, 20.0), sweep.context(time.monotonic() + 20))
    finally:
        sweep.close()


def status(world: dict[str, Any], check_id: str, zone: str, **kw: Any) -> tuple[str, str]:
    r = run(world, check_id, zone, **kw)
    return str(r.status), r.summary


def test_authoritative(world: dict[str, Any]) -> None:
    assert status(world, "dns.ns.authoritative", "good.test")[0] == "ok"
    st, summary = status(world, "dns.ns.authoritative", "lame.test")
    assert st == "fail" and "127.0.0.2" in summary and "REFUSED" in summary


def test_a_name_server_that_never_answers_is_an_error(world: dict[str, Any]) -> None:
    started = time.monotonic()
    st, summary = status(world, "dns.ns.authoritative", "silent.test")
    assert st == "error" and "no name server answered" in summary
    assert time.monotonic() - started < 5


def test_consistency(world: dict[str, Any]) -> None:
    assert status(world, "dns.ns.consistency", "good.test")[0] == "ok"
    st, summary = status(world, "dns.ns.consistency", "serial.test")
    assert st == "warn" and "serials differ" in summary
    st, summary = status(world, "dns.ns.consistency", "nsdiff.test")
    assert st == "fail" and "NS sets differ" in summary


def test_recursion_refused_and_axfr_open_on_loopback(world: dict[str, Any]) -> None:
    assert status(world, "dns.ns.open-recursion", "good.test")[0] == "ok"
    # PowerDNS allows AXFR from 127.0.0.0/8 by default (allow-axfr-ips): a real open transfer.
    r = run(world, "dns.ns.axfr", "good.test")
    assert str(r.status) == "fail" and "transferred the whole zone" in r.summary


def test_soa_timers_of_powerdns_defaults(world: dict[str, Any]) -> None:
    st, summary = status(world, "dns.soa.timers", "good.test")
    assert st == "warn" and "refresh 10800" in summary  # default-soa-content: 10800 < 14400


def test_dnssec_chain(world: dict[str, Any]) -> None:
    r = run(world, "dns.dnssec.valid", "signed.test")
    assert str(r.status) == "ok", r.summary
    assert "validates from test." in r.summary
    st, summary = status(world, "dns.dnssec.valid", "unsigned.test")
    assert st == "fail" and "unsigned" in summary
    assert status(world, "dns.dnssec.valid", "unsigned.test", dnssec=False)[0] == "ok"
    # A signed zone without DS at the anchored parent: insecure.
    st, summary = status(world, "dns.dnssec.valid", "nsec3.test")
    assert st == "fail" and "no DS" in summary


def test_dnssec_expiry_and_nsec3(world: dict[str, Any]) -> None:
    r = run(world, "dns.dnssec.expiry", "signed.test")
    assert str(r.status) in ("ok", "warn"), r.summary
    assert r.evidence["servers"][0]["signatures"]
    st, summary = status(world, "dns.dnssec.nsec3", "nsec3.test")
    assert st == "warn" and "10 extra iterations" in summary and "salt abcd" in summary.lower()
    assert status(world, "dns.dnssec.nsec3", "signed.test")[0] == "ok"


def test_the_dnssec_checks_of_one_sweep_fetch_dnskey_once_per_server(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """dns.dnssec.valid, .expiry and .nsec3 all ask DNSKEY with DO through the sweep's
    resolver: one exchange per (zone, name server) for the three (the issue-22 promise)."""
    sent: list[tuple[str, str, str]] = []
    original = Resolver._ask

    def ask(self: Resolver, srv: Any, name: str, rdtype: str, *args: Any) -> Any:
        sent.append((str(srv), name.rstrip(".").lower(), rdtype))
        return original(self, srv, name, rdtype, *args)

    monkeypatch.setattr(Resolver, "_ask", ask)
    fleet = parse_fleet({
        "probe": {"nameservers": [f"127.0.0.1:{world['port']}"],
                  "authoritative_port": world["port"], "dns_timeout": 0.5,
                  "trust_anchors": str(world["anchors"])},
        "zones": [{"name": "signed.test"}],
    })
    target = next(t for t in fleet.targets() if t.name == "signed.test")
    with SweepClients(fleet) as sweep:
        for check_id in ("dns.dnssec.valid", "dns.dnssec.expiry", "dns.dnssec.nsec3"):
            check = registry.checks()[check_id]
            result = execute(Job(check, target, 20.0), sweep.context(time.monotonic() + 20))
            assert str(result.status) in ("ok", "warn"), (check_id, result.summary)
    dnskey = [q for q in sent if q[1:] == ("signed.test", "DNSKEY")]
    assert dnskey and len(dnskey) == len(set(dnskey))


def test_caa_and_ipv6(world: dict[str, Any]) -> None:
    st, summary = status(world, "dns.caa", "good.test")
    assert st == "ok" and "letsencrypt.org" in summary
    st, summary = status(world, "dns.caa", "lame.test")
    assert st == "warn" and "no CAA" in summary
    st, summary = status(world, "dns.ipv6", "good.test")
    assert st == "fail" and "0 of 2" in summary


def test_every_dns_check_survives_the_dead_server(world: dict[str, Any]) -> None:
    for cid in [c for c in registry.checks() if c.startswith("dns.")]:
        r = run(world, cid, "silent.test")
        assert str(r.status) in ("ok", "warn", "fail", "error"), (cid, r.summary)
        assert "Traceback" not in r.summary
