"""The `watchtower` command: each group of subcommands lives in its own module of this
package and adds its parsers here; the commands call into the engine and parse nothing else."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from watchtower import __version__
from watchtower.cli import (
    dashboard,
    dns,
    explain,
    fleet,
    lab,
    probe,
    remediate,
    report,
    scaleout,
)
from watchtower.cli.common import EXIT_INTERRUPTED, EXIT_USAGE
from watchtower.daemon import DaemonError
from watchtower.errors import ConfigError

#: Order of `watchtower --help`.
COMMAND_MODULES = (fleet, probe, scaleout, report, remediate, dashboard, dns, explain, lab)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="watchtower", description="Monitoring, compliance and "
                                "remediation for fediverse hosting fleets on NixOS")
    p.add_argument("--version", action="version", version=f"watchtower {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in ("run", "agent", "lab", "demo"):
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except DaemonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
