"""What the lab's name servers serve for each domain, and the two ways it changes while the lab
runs: a fault switched on or off (`watchtower lab fault`), and an RRset changed through the lab's
DNS API (`watchtower.lab.dnsapi`, the PowerDNS calls watchtower's remediation makes).

A domain's zone is rendered from its faults (`fleet.zone_for`); the API's changes are kept per
domain as edits (RRset by owner and type, or deleted) laid over that rendering before the zone
is signed. Every change re-renders, re-signs, takes a new serial and swaps the zone into every
view at once, so a probe sees the old zone or the new one, never a mix.

Faults and API edits meet at RRsets, and the later change to an RRset wins:
- switching a fault **on** breaks what it breaks *now*, even where the API changed it before
  (so a fixed fault can be shown again: the edit at the RRsets the fault touches is dropped);
- switching a fault **off** takes back only the fault's own change: an RRset changed through
  the API since then keeps the API's records, and the switch says which (`FaultChange.kept`).
  A lab user who approved a fix expects it to stand; switching the fault off must not quietly
  replace it (for the same records, or for records the fix chose differently).
Edits live as long as the lab process, like faults switched at run time.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import dns.name
import dns.rdataset
import dns.rdatatype
import dns.zone

from watchtower.lab.dnsserver import DnsServer, LabSigner
from watchtower.lab.fleet import (
    LAB_SERIAL,
    NS2_ADDRESS,
    LabDomain,
    Slot,
    parent_zone,
    zone_for,
)

#: An API edit of one RRset: the records it holds now, or None when it was deleted.
Edit = dns.rdataset.Rdataset | None


@dataclass(frozen=True, slots=True)
class FaultChange:
    """What switching a fault did to a zone: the RRsets it changed, and those it left as the
    API set them (switching a fault off never undoes a fix)."""

    changed: tuple[Slot, ...] = ()
    kept: tuple[Slot, ...] = ()


def slot_text(slot: Slot) -> str:
    """`_dmarc.alpha.test. TXT`: an RRset as a person names it."""
    return f"{slot[0].to_text()} {dns.rdatatype.to_text(slot[1])}"


def _rrsets(domain: LabDomain, faults: set[str], dkim_txt: str) -> dict[Slot, frozenset[str]]:
    """The unsigned zone's RRsets (records and TTL) as `faults` render it; the SOA left out
    (its serial changes with every rendering)."""
    zone = zone_for(dataclasses.replace(domain, faults=set(faults)), dkim_txt)
    return {(name, rds.rdtype): frozenset([str(rds.ttl), *(rd.to_text() for rd in rds)])
            for name, rds in zone.iterate_rdatasets() if rds.rdtype != dns.rdatatype.SOA}


class LabZones:
    """The zones of the lab's domains as served, with the edits made through the DNS API."""

    def __init__(self, server: DnsServer, domains: list[LabDomain], dkim_txt: str = "",
                 signer: LabSigner | None = None) -> None:
        self.server = server
        self.domains = {d.name: d for d in domains}
        self.dkim_txt = dkim_txt
        self.signer = signer
        self.serials: dict[str, int] = {d.name: LAB_SERIAL for d in domains}
        self.edits: dict[str, dict[Slot, Edit]] = {d.name: {} for d in domains}
        self._lock = threading.Lock()

    def domain(self, origin: dns.name.Name) -> LabDomain | None:
        """The lab domain whose zone has this origin."""
        return self.domains.get(origin.to_text(omit_final_dot=True).lower())

    def served(self, domain: LabDomain) -> dns.zone.Zone | None:
        """The zone the first name server serves for `domain` now."""
        view = self.server.views.get("127.0.0.1")
        return None if view is None else view.zones.get(dns.name.from_text(domain.name + "."))

    def edit(self, domain: LabDomain, changes: Mapping[Slot, Edit]) -> tuple[int, int]:
        """Apply API changes (in order, as one transaction); (old serial, new serial)."""
        with self._lock:
            old = self.serials[domain.name]
            self.edits[domain.name].update(changes)
            self._publish(domain, parent=False)
            return old, self.serials[domain.name]

    def switch(self, domain: LabDomain, fault: str, on: bool, *, parent: bool) -> FaultChange:
        """Switch a DNS fault of `domain` and serve the result (see the module docstring)."""
        with self._lock:
            before = _rrsets(domain, domain.faults, self.dkim_txt)
            (domain.faults.add if on else domain.faults.discard)(fault)
            after = _rrsets(domain, domain.faults, self.dkim_txt)
            changed = tuple(sorted(s for s in before.keys() | after.keys()
                                   if before.get(s) != after.get(s)))
            edits = self.edits[domain.name]
            kept = () if on else tuple(s for s in changed if s in edits)
            if on:
                for slot in changed:
                    edits.pop(slot, None)
            self._publish(domain, parent=parent)
            return FaultChange(changed, kept)

    def _publish(self, domain: LabDomain, *, parent: bool) -> None:
        """Re-render and re-sign `domain`'s zones with a new serial, then swap them in."""
        serial = self.serials[domain.name] + 1
        self.serials[domain.name] = serial
        edits = self.edits[domain.name]
        primary = zone_for(domain, self.dkim_txt, serial, self.signer, edits=edits)
        second = (zone_for(domain, self.dkim_txt, serial - 1, self.signer, edits=edits)
                  if "serial-mismatch" in domain.faults else primary)
        origin = dns.name.from_text(domain.name + ".")
        parent_z = parent_zone(list(self.domains.values()), self.signer) if parent else None
        for address, view in self.server.views.items():
            zones = dict(view.zones)
            zones[origin] = second if address == NS2_ADDRESS else primary
            if parent_z is not None and parent_z.origin is not None:
                zones[parent_z.origin] = parent_z
            lame = set(view.lame)
            axfr = set(view.allow_axfr)
            if address == NS2_ADDRESS:
                (lame.add if "lame-ns" in domain.faults else lame.discard)(origin)
            (axfr.add if "open-axfr" in domain.faults else axfr.discard)(origin)
            # Whole-attribute stores: a query thread reads the old dict or the new one.
            view.zones, view.lame, view.allow_axfr = zones, lame, axfr
