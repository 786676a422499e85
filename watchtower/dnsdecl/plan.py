"""The changes that bring a zone to its declared state, as one PowerDNS API PATCH, and the PATCH
that undoes them exactly.

Reads the zone's RRsets through the DNS API (what the primary holds, disabled records included),
compares them with the declared records (`compare`), and for each slot that differs writes the
whole RRset: REPLACE with the declared records (keeping TXT records of kinds we do not manage,
and a served MTA-STS id that is valid), or DELETE when nothing of it is declared. The undo body
puts every touched RRset back as it was — same records, same TTL, same disabled flags — or
deletes the RRsets the change created. One PATCH is one transaction in PowerDNS, so a zone is
never left half-changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from watchtower.dnsdecl.compare import Difference, Slot, compare, group, queries
from watchtower.dnsdecl.records import Record, absolute, record_key, txt_kind


@dataclass
class ZonePlan:
    zone: str
    differences: list[Difference]
    changes: list[dict[str, Any]] = field(default_factory=list)
    undo: list[dict[str, Any]] = field(default_factory=list)
    diff_lines: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes

    def patch_body(self) -> dict[str, Any]:
        return {"rrsets": self.changes}

    def undo_body(self) -> dict[str, Any]:
        return {"rrsets": self.undo}

    def text(self) -> str:
        if self.empty:
            return f"{self.zone}: in the declared state, nothing to change"
        return "\n".join([f"{self.zone}: {len(self.changes)} RRset change(s)",
                          *self.diff_lines])


def served_from_api(rrsets: list[dict[str, Any]]) -> dict[Slot, list[str]]:
    """(name, type) -> enabled record contents, as the API lists them."""
    out: dict[Slot, list[str]] = {}
    for rr in rrsets:
        slot = (absolute(rr["name"]), str(rr["type"]).upper())
        out[slot] = [r["content"] for r in rr.get("records", []) if not r.get("disabled")]
    return out


def plan_zone(zone: str, declared: list[Record], rrsets: list[dict[str, Any]]) -> ZonePlan:
    served = served_from_api(rrsets)
    full = {slot: served.get(slot, []) for slot in queries(declared)}
    differences = compare(declared, full)
    plan = ZonePlan(zone.rstrip(".") + ".", differences)
    by_slot = {(absolute(rr["name"]), str(rr["type"]).upper()): rr for rr in rrsets}
    wanted = group(declared)
    touched = list(dict.fromkeys((d.name, d.type) for d in differences))
    # Deletions first: PowerDNS refuses a CNAME beside other data within one change set.
    touched.sort(key=lambda slot: bool(_new_contents(slot, wanted, full)))
    for slot in touched:
        name, rtype = slot
        old = by_slot.get(slot)
        new = _new_contents(slot, wanted, full)
        old_contents = [r["content"] for r in (old or {}).get("records", [])]
        if new:
            ttl = min(r.ttl for r in wanted.get(slot, [])) if wanted.get(slot) else int(
                (old or {}).get("ttl", 3600))
            plan.changes.append({"name": name, "type": rtype, "ttl": ttl,
                                 "changetype": "REPLACE",
                                 "records": [{"content": c, "disabled": False} for c in new]})
        else:
            plan.changes.append({"name": name, "type": rtype, "changetype": "DELETE"})
        if old is not None:
            plan.undo.append({"name": name, "type": rtype, "ttl": int(old.get("ttl", 3600)),
                              "changetype": "REPLACE",
                              "records": [{"content": r["content"],
                                           "disabled": bool(r.get("disabled", False))}
                                          for r in old.get("records", [])]})
        else:
            plan.undo.append({"name": name, "type": rtype, "changetype": "DELETE"})
        new_keys = {record_key(rtype, c) for c in new}
        old_keys = {record_key(rtype, c) for c in old_contents}
        plan.diff_lines += [f"- {name} {rtype} {c}" for c in old_contents
                            if record_key(rtype, c) not in new_keys]
        plan.diff_lines += [f"+ {name} {rtype} {c}" for c in new
                            if record_key(rtype, c) not in old_keys]
    # Undo: deletions of created RRsets before restorations, the mirror of the change order.
    plan.undo.sort(key=lambda rr: rr["changetype"] != "DELETE")
    return plan


def _new_contents(slot: Slot, wanted: dict[Slot, list[Record]],
                  served: dict[Slot, list[str]]) -> list[str]:
    """The RRset the slot should hold: the declared records, where a served record satisfies
    a declared one keep the served spelling (a valid MTA-STS id stays), TXT of unmanaged kinds
    kept."""
    rtype = slot[1]
    decl = wanted.get(slot, [])
    have = served.get(slot, [])
    out: list[str] = []
    for r in decl:
        match = next((c for c in have if r.satisfied_by(record_key(rtype, c))), None)
        out.append(match if match is not None else r.content)
    if rtype == "TXT":
        kinds = {txt_kind(r.key) for r in decl}
        out += [c for c in have if txt_kind(record_key(rtype, c)) not in kinds]
    return list(dict.fromkeys(out))
