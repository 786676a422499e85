"""`watchtower init | validate | checks | fleet import`: the fleet file and the catalog."""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

from watchtower.cli.common import EXIT_OK, EXIT_USAGE, Subparsers, load
from watchtower.compliance import frameworks
from watchtower.probe import registry


def add_parsers(sub: Subparsers) -> None:
    s = sub.add_parser("init", help="write a commented example fleet file")
    s.add_argument("-o", "--output", default="fleet.toml")
    s.add_argument("--force", action="store_true")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("validate", help="check a fleet file and exit")
    s.add_argument("-c", "--config", required=True)
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("checks", help="list registered checks and the remediations that fix them")
    s.add_argument("--format", choices=["table", "json"], default="table")
    s.add_argument("-c", "--config", help="a fleet file: also the fixes it configures")
    s.set_defaults(func=cmd_checks)

    fleet_p = sub.add_parser("fleet", help="the fleet file from other sources")
    fleet_sub = fleet_p.add_subparsers(dest="fleet_command", required=True)
    s = fleet_sub.add_parser(
        "import", help="derive the fleet from a flake's NixOS configurations (nix eval)")
    s.add_argument("--flake", required=True, metavar="PATH[#ATTR]",
                   help="flake and attribute of its NixOS configurations "
                        "(default attribute: nixosConfigurations)")
    s.add_argument("--out", help="fleet file to write; if it exists, show the merge as a diff")
    s.add_argument("--merge", action="store_true",
                   help="with --out naming an existing file: write the merge (theirs win)")
    s.add_argument("--nix", default="nix", help="the nix command (default: nix from PATH)")
    s.set_defaults(func=cmd_fleet_import)


def cmd_init(args: argparse.Namespace) -> int:
    text = resources.files("watchtower").joinpath("example_fleet.toml").read_text()
    if args.output == "-":
        sys.stdout.write(text)
        return EXIT_OK
    out = Path(args.output)
    if out.exists() and not args.force:
        print(f"{out} exists; use --force to overwrite", file=sys.stderr)
        return EXIT_USAGE
    out.write_text(text)
    print(f"wrote {out}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    fleet = load(args.config)
    targets = fleet.targets()
    print(f"{args.config}: ok ({len(targets)} targets, {len(fleet.checks)} check overrides)")
    return EXIT_OK


def cmd_checks(args: argparse.Namespace) -> int:
    """Every registered check with the remediations that can fix it (from their triggers; with
    -c, also those the fleet file adds, such as DNS templates)."""
    checks = registry.checks()
    fixes = registry.fixes(load(args.config) if args.config else None)
    if args.format == "json":
        entries = [{**c.meta.to_json(), **frameworks.mapping_of(cid),
                    "remediations": list(fixes.get(cid, ()))}
                   for cid, c in checks.items()]
        # internet.nl tests no check computes (RPKI needs the RIRs' repositories ...): listed
        # so a reader sees them as not tested, never as passed.
        untested = [t.to_json() for t in frameworks.untested()]
        json.dump({"checks": entries, "internetnl_not_tested": untested}, sys.stdout, indent=2)
        print()
        return EXIT_OK
    for cid, c in checks.items():
        kinds = ",".join(str(k) for k in c.meta.applies_to)
        fix = f"  (fix: {', '.join(fixes[cid])})" if cid in fixes else ""
        print(f"{c.meta.id:28} {c.meta.family:8} {kinds:18} {c.meta.title}{fix}")
    return EXIT_OK


def cmd_fleet_import(args: argparse.Namespace) -> int:
    from watchtower.config.from_nix import import_fleet

    out = None if args.out is None else Path(args.out)
    text = import_fleet(args.flake, out, merge=args.merge, nix=args.nix,
                        known=registry.check_ids_and_families())
    sys.stdout.write(text.rstrip("\n") + "\n")
    return EXIT_OK
