"""Faults and DNS API edits meeting at the lab's RRsets (watchtower/lab/zones.py): an edit is
served, a fault switched on breaks its records even after a fix, a fault switched off leaves a
fix standing and says so. Zones are checked as the lab's views hold them (no sockets)."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype

from watchtower.lab.dnsserver import DnsServer
from watchtower.lab.fleet import NS2_ADDRESS, build_domains, build_lab_dns
from watchtower.lab.zones import LabZones, slot_text

DMARC = dns.name.from_text("_dmarc.alpha.test.")
TXT = dns.rdatatype.TXT
FIX = '"v=DMARC1; p=quarantine"'


def _zones() -> LabZones:
    domains = build_domains(2, {})
    server = DnsServer(["127.0.0.1", NS2_ADDRESS])
    views = build_lab_dns(domains, '"v=DKIM1; p="', None).views
    server.views.update({a: views[a] for a in server.addresses})
    return LabZones(server, domains, '"v=DKIM1; p="')


def _txt(*contents: str) -> dns.rdataset.Rdataset:
    rds = dns.rdataset.Rdataset(dns.rdataclass.IN, TXT)
    for c in contents:
        rds.add(dns.rdata.from_text(dns.rdataclass.IN, TXT, c), 300)
    return rds


def _served(zones: LabZones, address: str = "127.0.0.1") -> list[str]:
    zone = zones.server.views[address].zones[dns.name.from_text("alpha.test.")]
    rds = zone.get_rdataset(DMARC, TXT)
    return sorted(rd.to_text() for rd in rds) if rds is not None else []


def test_an_edit_is_served_by_every_server_with_a_new_serial() -> None:
    zones = _zones()
    alpha = zones.domains["alpha.test"]
    old, new = zones.edit(alpha, {(DMARC, TXT): _txt(FIX)})
    assert new == old + 1
    assert _served(zones) == _served(zones, NS2_ADDRESS) == [FIX]
    zones.edit(alpha, {(DMARC, TXT): None})
    assert _served(zones) == []


def test_a_fault_switched_on_breaks_its_records_even_after_a_fix() -> None:
    zones = _zones()
    alpha = zones.domains["alpha.test"]
    zones.edit(alpha, {(DMARC, TXT): _txt(FIX)})
    change = zones.switch(alpha, "no-dmarc", True, parent=False)
    assert slot_text((DMARC, TXT)) in [slot_text(s) for s in change.changed]
    assert _served(zones) == [] and "no-dmarc" in alpha.faults


def test_a_fault_switched_off_leaves_a_fix_standing() -> None:
    zones = _zones()
    alpha = zones.domains["alpha.test"]
    zones.switch(alpha, "no-dmarc", True, parent=False)
    zones.edit(alpha, {(DMARC, TXT): _txt(FIX)})  # the approved fix
    change = zones.switch(alpha, "no-dmarc", False, parent=False)
    assert [slot_text(s) for s in change.kept] == ["_dmarc.alpha.test. TXT"]
    assert _served(zones) == [FIX]
    zones.switch(alpha, "no-dmarc", True, parent=False)  # shown again: broken again
    assert _served(zones) == []


def test_without_edits_a_fault_switched_off_restores_the_lab_record() -> None:
    zones = _zones()
    alpha = zones.domains["alpha.test"]
    zones.switch(alpha, "no-dmarc", True, parent=False)
    change = zones.switch(alpha, "no-dmarc", False, parent=False)
    assert change.kept == ()
    assert _served(zones)[0].startswith('"v=DMARC1; p=reject')
