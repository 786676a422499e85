"""`watchtower dns plan|export`: the declared records, as changes to make or as files.

`plan` reads each zone's RRsets through its `[[dns_apis]]` entry and prints the changes that
bring it to the declared state (nothing is changed: applying is the `dns.records`
remediation's job, under its policy). `export` writes the declared records as an octoDNS YAML
zone or an RFC 1035 zone file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from watchtower.cli.common import Subparsers, load
from watchtower.config import Fleet, Zone
from watchtower.dnsdecl import declare, probe_context
from watchtower.dnsdecl.derive import find_zone
from watchtower.dnsdecl.export import to_octodns, to_zonefile
from watchtower.dnsdecl.plan import plan_zone
from watchtower.errors import ConfigError, ProbeError
from watchtower.probe.clients import DnsApis


def add_parsers(sub: Subparsers) -> None:
    s = sub.add_parser("dns", help="declared DNS: plan changes, export zones")
    dns_sub = s.add_subparsers(dest="dns_command", required=True)
    p = dns_sub.add_parser("plan", help="the changes that bring zones to the declared state")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--zone", action="append", help="zone name (repeatable; default: all)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--offline", action="store_true",
                   help="derive without probing certificates (no TLSA, no CA-derived CAA)")
    p = dns_sub.add_parser("export", help="write the declared records of a zone")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--zone", required=True)
    p.add_argument("--format", choices=["octodns", "zonefile"], default="zonefile")
    p.add_argument("--out", help="file to write (default: standard output)")
    p.add_argument("--offline", action="store_true",
                   help="derive without probing certificates (no TLSA, no CA-derived CAA)")
    s.set_defaults(func=cmd_dns)


def _zones(fleet: Fleet, names: list[str] | None) -> list[Zone]:
    if not names:
        return list(fleet.zones)
    zones = []
    for name in names:
        zone = find_zone(fleet, name)
        if zone is None:
            raise ConfigError([f"--zone {name}: no [[zones]] entry of that name"])
        zones.append(zone)
    return zones


def cmd_dns(args: argparse.Namespace) -> int:
    fleet = load(args.config)
    zones = _zones(fleet, [args.zone] if isinstance(args.zone, str) else args.zone)
    with probe_context(fleet) as ctx:
        declarations = {z.name: declare(fleet, z, None if args.offline else ctx) for z in zones}
    for decl in declarations.values():
        for note in [*decl.problems, *decl.unlocated]:
            print(f"note: {decl.zone}: {note}", file=sys.stderr)
    if args.dns_command == "export":
        zone = zones[0]
        records = declarations[zone.name].records
        text = (to_octodns(zone, records) if args.format == "octodns"
                else to_zonefile(zone, records))
        if args.out:
            Path(args.out).write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    status = 0
    plans = []
    apis = DnsApis(fleet.dns_apis, fleet.probe.dns_api_timeout)
    for zone in zones:
        try:
            api = apis.for_zone(zone.name)
            if api is None:
                print(f"{zone.name}: no [[dns_apis]] entry manages this zone", file=sys.stderr)
                status = 1
                continue
            rrsets = api.rrsets(zone.name)
        except ProbeError as exc:
            print(f"{zone.name}: {exc.reason}", file=sys.stderr)
            status = 1
            continue
        plan = plan_zone(zone.name, declarations[zone.name].records, rrsets)
        plans.append(plan)
        if args.format == "text":
            print(plan.text())
    if args.format == "json":
        print(json.dumps([{"zone": p.zone, "differences": [d.to_json() for d in p.differences],
                           "patch": p.patch_body(), "undo": p.undo_body()} for p in plans],
                         indent=2))
    return status
