"""Declared records vs served records: what is missing, different or extra. Pure.

The unit compared is an RRset slot, (name, type) — for TXT, (name, kind), because one name holds
TXT records of unrelated purposes (SPF beside a site-verification token) and only those of a
declared kind are ours. In a slot:
- declared records all served, nothing else: in order;
- some declared not served, nothing else served: **missing**;
- some declared not served, others served instead: **different** (e.g. SPF `+all` served where
  `mx -all` is declared, an old address);
- declared all served, and more: **extra** (a second SPF record, a stale MX).
At a name where an address or CNAME is declared, A, AAAA and CNAME are all managed: a served
AAAA nobody declared is extra too (a stale IPv6 address is the classic leftover).

`served` maps (name, type) to the record contents seen, for every slot `queries()` lists; a slot
absent from the map was not looked at and is not judged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from watchtower.dnsdecl.records import ADDRESS_TYPES, Record, record_key, txt_kind

Slot = tuple[str, str]


@dataclass(frozen=True)
class Difference:
    kind: str  # missing | different | extra
    name: str
    type: str
    declared: tuple[str, ...]
    served: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "type": self.type,
                "declared": list(self.declared), "served": list(self.served)}

    def describe(self) -> str:
        if self.kind == "missing":
            return f"missing {self.name} {self.type} {', '.join(self.declared)}"
        if self.kind == "extra":
            return f"extra {self.name} {self.type} {', '.join(self.served)}"
        return (f"different {self.name} {self.type}: serves {', '.join(self.served) or '-'}, "
                f"declared {', '.join(self.declared)}")


def queries(declared: list[Record]) -> list[Slot]:
    """The (name, type) questions that show every declared and every managed record."""
    slots: dict[Slot, None] = {}
    for r in declared:
        slots[(r.name, r.type)] = None
        if r.type in ADDRESS_TYPES:
            for t in ADDRESS_TYPES:
                slots[(r.name, t)] = None
    return list(slots)


def group(declared: list[Record]) -> dict[Slot, list[Record]]:
    out: dict[Slot, list[Record]] = defaultdict(list)
    for r in declared:
        out[(r.name, r.type)].append(r)
    return out


def _kind(rtype: str, key: str) -> str:
    return txt_kind(key) if rtype == "TXT" else ""


def compare(declared: list[Record], served: dict[Slot, list[str]]) -> list[Difference]:
    """Differences between the declared records and what one server (or the API) serves."""
    out: list[Difference] = []
    wanted = group(declared)
    for slot in queries(declared):
        if slot not in served:
            continue
        name, rtype = slot
        seen = list(dict.fromkeys(record_key(rtype, c) for c in served[slot]))
        decl = wanted.get(slot, [])
        kinds = dict.fromkeys(_kind(rtype, r.key) for r in decl) if decl else {"": None}
        for kind in kinds:
            mine = [r for r in decl if _kind(rtype, r.key) == kind]
            theirs = [k for k in seen if rtype != "TXT" or _kind(rtype, k) == kind]
            missing = [r for r in mine if not any(r.satisfied_by(k) for k in theirs)]
            extra = [k for k in theirs if not any(r.satisfied_by(k) for r in mine)]
            if missing and extra:
                out.append(Difference("different", name, rtype,
                                      tuple(r.key for r in missing), tuple(extra)))
            elif missing:
                out.append(Difference("missing", name, rtype, tuple(r.key for r in missing), ()))
            elif extra:
                out.append(Difference("extra", name, rtype, (), tuple(extra)))
    return out
