"""host.* checks (per host): failed systemd units, free disk space.

Facts come through the sweep's host client (`ctx.hosts`, local or SSH) from `systemctl`, `df`
and `nix-store`; see watchtower.inventory.nixos for the exact commands.
"""

from __future__ import annotations

import fnmatch
import re
import time
from typing import Any

from watchtower.config import Fleet, Host
from watchtower.inventory import nixos as hostfacts
from watchtower.model import Findings, Target, TargetKind, Verdict
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
        query="failed systemd units over SSH",
        verdicts="fail any failed unit of a declared service",
        applies_to=(TargetKind.HOST,),
        interval=300,
        timeout=30,
        standards=("ISO/IEC 27001:2022 A.8.16 (monitoring activities)",
                   "systemd.unit(5) failed state"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        host: Host = target.spec
        failed = hostfacts.failed_units(ctx.hosts.transport(host), host,
                                        ctx.hosts.budget(ctx.deadline))
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
        query="free space of `/` and `/nix`",
        verdicts="warn < 15 %, fail < 5 %",
        applies_to=(TargetKind.HOST,),
        interval=600,
        timeout=30,
        standards=("ISO/IEC 27001:2022 A.8.6 (capacity management)",),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        host: Host = target.spec
        disks = hostfacts.disk_usage(ctx.hosts.transport(host), host,
                                     ctx.hosts.budget(ctx.deadline))
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


STORE_NAME = re.compile(r"^[0-9a-df-np-sv-z]{32}-")


def rotation(closure: list[str], size: int, now: float, interval: float) -> tuple[int, list[str]]:
    """The chunk of the (sorted) closure this sweep verifies: chunk k of n where k advances
    once per check interval, so every path is verified at least once every n intervals."""
    paths = sorted(closure)
    if size <= 0 or size >= len(paths):
        return 0, paths
    chunks = -(-len(paths) // size)
    index = int(now // interval) % chunks
    # the last chunk wraps around to the start, so every sweep verifies `size` paths
    return index, [paths[(index * size + i) % len(paths)] for i in range(size)]


def store_dir(closure: list[str]) -> str | None:
    """The store directory the closure lives in (/nix/store, or a test store's)."""
    return closure[0].rsplit("/", 1)[0] if closure and "/" in closure[0] else None


@register
class StoreIntegrity(Check):
    meta = CheckMeta(
        id="host.store-integrity",
        family="host",
        title="The running system's store paths are unmodified; nothing in the store is writable",
        query=(
            "`nix-store --verify-path` over `store_sample` paths of the running closure (a chunk "
            "rotating once per interval), `find -perm /0222` under them and on top-level store "
            "entries"
        ),
        verdicts=(
            "fail a path modified after it was built, a writable file in the store; `error` when "
            "verification cannot run"
        ),
        applies_to=(TargetKind.HOST,),
        interval=3600,
        timeout=120,
        standards=("ISO/IEC 27001:2022 A.8.9 (configuration management)",
                   "Nix manual: nix-store --verify-path"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        host: Host = target.spec
        hosts, t = ctx.hosts, ctx.hosts.transport(host)
        system = hosts.system_state(host, ctx.deadline)["current"]
        closure = hosts.closure(host, system, ctx.deadline)
        index, sample = rotation(closure, host.store_sample, time.time(), self.meta.interval)
        verified = hostfacts.verify_paths(t, host, sample, hosts.budget(ctx.deadline))
        store = store_dir(closure)
        top = t.run(["find", store, "-mindepth", "1", "-maxdepth", "1", "-perm", "/0222",
                     "!", "-type", "l", "-print"], hosts.budget(ctx.deadline)) if store else None
        writable = hostfacts.writable_files(t, sample, hosts.budget(ctx.deadline))
        # Top-level entries that are store paths (hash-name); Nix's own .links (hard-link
        # deduplication) is writable by design.
        writable += [line for line in (top.stdout.splitlines() if top else [])
                     if STORE_NAME.match(line.rsplit("/", 1)[-1])]
        return {"host": host.name, "system": system, "closure_size": len(closure),
                "chunk": index, "verified": len(sample), **verified,
                "writable": sorted(set(writable))[:hostfacts.WRITABLE_CAP]}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        for entry in facts.get("modified") or []:
            f.fail(f"{entry.get('path')} was modified after it was built (expected "
                   f"{entry.get('expected')}, got {entry.get('got')})")
        writable = facts.get("writable") or []
        if writable:
            more = f" (+{len(writable) - 3} more)" if len(writable) > 3 else ""
            f.fail(f"writable in the store: {', '.join(writable[:3])}{more}")
        if facts.get("rc") not in (0, None) and not facts.get("modified"):
            f.error(f"nix-store --verify-path failed: {'; '.join(facts.get('errors') or [])}")
        return f.verdict(f"{facts.get('verified')} of {facts.get('closure_size')} store paths of "
                         f"the running system verified (chunk {facts.get('chunk')}), none "
                         "modified, nothing writable")
