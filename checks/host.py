"""host.* checks (per host): failed systemd units, free disk space.

Facts come through watchtower.net.transport (local or SSH) from `systemctl` and `df`; see
watchtower.inventory.nixos for the exact commands.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from watchtower.config import Fleet, Host
from watchtower.inventory import nixos as hostfacts
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.deadline import remaining
from watchtower.net.transport import open_transport
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

DISK_WARN_PERCENT = 15.0
DISK_FAIL_PERCENT = 5.0

#: The systemd units the NixOS modules of each service kind create (globs).
SERVICE_UNITS: dict[str, tuple[str, ...]] = {
    "mastodon": ("mastodon-*",),
    "peertube": ("peertube*",),
    "pixelfed": ("pixelfed*", "phpfpm-pixelfed*"),
    "synapse": ("matrix-synapse*",),
    "garage": ("garage*",),
}


def declared_units(fleet: Fleet, host: Host) -> list[str]:
    """Unit globs that matter on this host: its own `units` and those of its services."""
    globs = list(host.units)
    for s in fleet.services:
        if s.host == host.name:
            globs += [g for g in SERVICE_UNITS.get(s.kind, ()) if g not in globs]
    return globs


def unit_matches(unit: str, globs: list[str]) -> bool:
    """`mastodon-web.service` matches `mastodon-*` and `mastodon-web` (suffix optional)."""
    stem = unit.rsplit(".", 1)[0]
    return any(fnmatch.fnmatchcase(unit, g) or fnmatch.fnmatchcase(stem, g) for g in globs)


@register
class Units(Check):
    meta = CheckMeta(
        id="host.units",
        family="host",
        title="No failed systemd unit of a declared service",
        applies_to=(TargetKind.HOST,),
        interval=300,
        timeout=30,
        standards=("ISO/IEC 27001:2022 A.8.16 (monitoring activities)",
                   "systemd.unit(5) failed state"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        host: Host = target.spec
        with open_transport(host) as t:
            failed = hostfacts.failed_units(t, host, remaining(ctx.deadline, 600.0))
        return {"host": host.name, "failed": failed, "declared": declared_units(ctx.fleet, host)}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        declared = facts.get("declared") or []
        for unit in facts.get("failed") or []:
            name = unit["unit"]
            if unit_matches(name, declared):
                f.fail(f"{name} failed ({unit.get('sub', 'failed')}) - a declared service")
            else:
                f.warn(f"{name} failed ({unit.get('sub', 'failed')})")
        return f.verdict(f"no failed units ({len(declared)} declared unit patterns)")


@register
class Disk(Check):
    meta = CheckMeta(
        id="host.disk",
        family="host",
        title="Enough free space on / and /nix",
        applies_to=(TargetKind.HOST,),
        interval=600,
        timeout=30,
        standards=("ISO/IEC 27001:2022 A.8.6 (capacity management)",),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        host: Host = target.spec
        with open_transport(host) as t:
            disks = hostfacts.disk_usage(t, host, remaining(ctx.deadline, 600.0))
        return {"host": host.name, "disks": disks}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        shown: list[str] = []
        for d in facts.get("disks") or []:
            path = d["path"]
            if d.get("problem") or d.get("free_percent") is None:
                f.error(f"{path}: cannot measure ({d.get('problem', 'no df output')})")
                continue
            free = float(d["free_percent"])
            text = f"{path} has {free:.1f}% free ({_human(d.get('avail_bytes'))})"
            shown.append(text)
            if free < DISK_FAIL_PERCENT:
                f.fail(text)
            elif free < DISK_WARN_PERCENT:
                f.warn(text)
        return f.verdict("; ".join(shown) or "no paths measured")


def _human(value: Any) -> str:
    amount = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"
