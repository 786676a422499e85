"""The declared records as files other DNS tools load: an octoDNS YAML zone, an RFC 1035 zone.

Providers who run their DNS through octoDNS (or any server reading master files) take the
fleet's declared state from here instead of typing it twice.

- octoDNS: one YAML mapping, relative names as keys (`''` = apex), a record or a list of
  records per name, the value shapes of octoDNS's record types; TXT values have `;` escaped as
  octoDNS requires.
- Zone file (RFC 1035 5): `$ORIGIN`, `$TTL`, an SOA (RFC 1035 3.3.13; serial given, timers the
  values dns.soa.timers accepts) and the NS set from `[[zones]] nameservers`, then the records.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import yaml

from watchtower.config import Zone
from watchtower.dnsdecl.records import Record, absolute, parse, txt_value

SOA_TIMERS = "14400 3600 1209600 3600"  # refresh retry expire minimum (dns.soa.timers: ok)


def relative(name: str, origin: str) -> str:
    origin = absolute(origin)
    if name == origin:
        return ""
    return name[: -len(origin) - 1] if name.endswith("." + origin) else name


def octodns_value(r: Record, *, escaped: bool = True) -> Any:
    """The record's value as octoDNS YAML writes it; TXT with `;` escaped unless the
    YamlProvider reads values unescaped (`escaped_semicolons: false`)."""
    rd: Any = parse(r.type, r.content)
    if r.type == "TXT":
        value = txt_value(r.content)
        return value.replace("\\", "\\\\").replace(";", "\\;") if escaped else value
    if r.type in ("A", "AAAA"):
        return rd.address
    if r.type in ("CNAME", "NS"):
        return rd.target.to_text()
    if r.type == "MX":
        return {"preference": int(rd.preference), "exchange": rd.exchange.to_text()}
    if r.type == "SRV":
        return {"priority": int(rd.priority), "weight": int(rd.weight), "port": int(rd.port),
                "target": rd.target.to_text()}
    if r.type == "CAA":
        return {"flags": int(rd.flags), "tag": rd.tag.decode(), "value": rd.value.decode()}
    if r.type == "TLSA":
        return {"certificate_usage": int(rd.usage), "selector": int(rd.selector),
                "matching_type": int(rd.mtype), "certificate_association_data": rd.cert.hex()}
    raise ValueError(f"no octoDNS form for {r.type}")


def to_octodns(zone: Zone, records: list[Record]) -> str:
    by_name: dict[str, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        by_name[relative(r.name, zone.name)][r.type].append(r)
    doc: dict[str, Any] = {}
    for name in sorted(by_name):
        entries = []
        for rtype in sorted(by_name[name]):
            group = by_name[name][rtype]
            values = [octodns_value(r) for r in group]
            entry: dict[str, Any] = {"type": rtype, "ttl": min(r.ttl for r in group)}
            if rtype == "CNAME":
                entry["value"] = values[0]
            else:
                entry["values"] = values
            entries.append(entry)
        doc[name] = entries[0] if len(entries) == 1 else entries
    return "---\n" + str(yaml.safe_dump(doc, sort_keys=True, default_flow_style=False))


def to_zonefile(zone: Zone, records: list[Record], serial: int | None = None) -> str:
    origin = absolute(zone.name)
    serial = serial or int(dt.datetime.now(dt.UTC).strftime("%Y%m%d01"))
    primary = absolute(zone.nameservers[0]) if zone.nameservers else f"ns1.{origin}"
    lines = [f"; {origin} as declared by the watchtower fleet file",
             f"$ORIGIN {origin}", f"$TTL {zone.record_ttl}",
             f"@ IN SOA {primary} hostmaster.{origin} {serial} {SOA_TIMERS}"]
    declared_ns = {(r.name, r.type) for r in records} & {(origin, "NS")}
    if not declared_ns:
        lines += [f"@ IN NS {absolute(ns)}" for ns in zone.nameservers]
    for r in sorted(records):
        lines.append(f"{relative(r.name, origin) or '@'} {r.ttl} IN {r.type} {r.content}")
    return "\n".join(lines) + "\n"
