"""drift.* checks: is what runs what was declared, current with upstream, and free of advisories?

Per host (NixOS): drift.generation (running system vs the declared toplevel, with the closure
difference as evidence), drift.reboot (booted kernel vs current kernel), drift.advisories (the
running closure vs vulnix/OSV feeds, with an expiring whitelist). Per service: drift.version
(the version the service reports vs the declared one, and the declared one vs the release feed).
Host facts come through the sweep's host client (`ctx.hosts`: local or SSH, one `system_state`
and one closure per path per host and sweep, however many of these checks ask); see
watchtower.inventory.nixos for the commands.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from watchtower.config import Host, Service
from watchtower.errors import ProbeError
from watchtower.inventory import nixos as hostfacts
from watchtower.inventory.advisories import AdvisoryError, load_feeds, load_whitelist, match
from watchtower.inventory.feeds import FeedError, behind_summary, load_release_feed, upstream_facts
from watchtower.inventory.storepaths import closure_diff, diff_size, packages, store_name
from watchtower.inventory.versions import CLOSURE_PACKAGE, running_version, same
from watchtower.model import FEDI_KINDS, Findings, Target, TargetKind, Verdict
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext, observed_at
from watchtower.probe.registry import register

SERVICE_KINDS = (*FEDI_KINDS, TargetKind.SYNAPSE, TargetKind.GARAGE)


def short(path: str | None) -> str:
    return store_name(path) if path else "(none)"


def generation_of(facts: Facts, path: str | None) -> int | None:
    for g in facts.get("generations") or []:
        if path and g.get("path") == path:
            return int(g["number"])
    return None


@register
class Generation(Check):
    meta = CheckMeta(
        id="drift.generation",
        family="drift",
        title="Host runs the declared NixOS system closure",
        query="host's `/run/current-system` vs the expected system closure",
        verdicts="fail host not running the declared generation",
        applies_to=(TargetKind.HOST,),
        interval=900,
        timeout=60,
        standards=("NIST SP 800-128 (configuration baselines)", "ISO/IEC 27001:2022 A.8.9"),
    )

    def applies(self, target: Target) -> bool:
        spec = target.spec
        return super().applies(target) and bool(
            isinstance(spec, Host) and (spec.expected_system or spec.manifest))

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        host: Host = target.spec
        expected, declared_by = hostfacts.expected_system(host)
        if expected is None:
            raise ProbeError(f"host {host.name}: no expected_system or manifest", kind="config")
        hosts, t = ctx.hosts, ctx.hosts.transport(host)
        state = hosts.system_state(host, ctx.deadline)
        facts: dict[str, Any] = {
            "host": host.name, "where": t.where, "declared_by": declared_by,
            "expected": expected, "current": state["current"], "profile": state["profile"],
            "nixos_version": state["nixos_version"],
            "generations": hostfacts.generations(t, host, hosts.budget(ctx.deadline)),
        }
        if state["current"] != expected.rstrip("/"):
            present = hostfacts.store_path_exists(t, host, expected, hosts.budget(ctx.deadline))
            facts["expected_in_store"] = present
            if present:
                old = hosts.closure(host, state["current"], ctx.deadline)
                new = hosts.closure(host, expected, ctx.deadline)
                facts["closure_diff"] = {
                    "from": state["current"], "to": expected, **closure_diff(old, new),
                    "diff_closures": hostfacts.diff_closures(
                        t, host, state["current"], expected, hosts.budget(ctx.deadline)),
                }
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        current, expected = facts["current"], facts["expected"].rstrip("/")
        running_gen = generation_of(facts, current)
        gen_text = f"generation {running_gen}" if running_gen else "no profile generation"
        if current == expected:
            profile = facts.get("profile")
            if profile and profile != current:
                gen = generation_of(facts, profile)
                f.warn(f"runs the declared system, but the profile's current generation"
                       f"{f' {gen}' if gen else ''} is {short(profile)}: the next boot or "
                       "activation would leave it")
            return f.verdict(f"runs the declared system {short(current)} ({gen_text}, "
                             f"NixOS {facts.get('nixos_version') or '?'})")
        declared_gen = generation_of(facts, expected)
        where = (f"the declared system is generation {declared_gen}" if declared_gen
                 else "the declared system is in the store but no generation"
                 if facts.get("expected_in_store")
                 else "the declared system is not in the host's store (deploy it)")
        diff = facts.get("closure_diff")
        changes = ""
        if diff:
            changes = (f"; {diff_size(diff)} package changes (+{len(diff['added'])} "
                       f"-{len(diff['removed'])} ~{len(diff['changed'])})")
        f.fail(f"runs {short(current)} ({gen_text}), declared {short(expected)}; "
               f"{where}{changes}")
        return f.verdict("")


@register
class Reboot(Check):
    meta = CheckMeta(
        id="drift.reboot",
        family="drift",
        title="Booted kernel is the current system's kernel",
        query="`/run/booted-system/kernel` vs `/run/current-system/kernel`",
        verdicts="warn reboot needed",
        applies_to=(TargetKind.HOST,),
        interval=3600,
        timeout=30,
        standards=("NIST SP 800-40r4 3.2 (patches take effect only after restart)",),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        host: Host = target.spec
        return {"host": host.name, **ctx.hosts.system_state(host, ctx.deadline)}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        booted, current = facts.get("booted_kernel"), facts.get("current_kernel")
        if not facts.get("booted"):
            f.error("no booted system link: cannot tell which kernel is running")
        elif not booted or not current:
            f.error(f"kernel link missing (booted {short(booted)}, current {short(current)})")
        elif booted != current:
            f.warn(f"reboot needed: booted kernel {short(booted)}, current system's kernel "
                   f"{short(current)}")
        return f.verdict(f"running the current system's kernel {short(current)}")


@register
class Advisories(Check):
    meta = CheckMeta(
        id="drift.advisories",
        family="drift",
        title="No known advisories for the running closure's packages",
        query=(
            "package versions in the running closure vs the advisory feed (vulnix-compatible JSON)"
        ),
        verdicts="fail known critical CVE, warn others; honour a whitelist with expiry dates",
        applies_to=(TargetKind.HOST,),
        interval=3600,
        timeout=60,
        standards=("NIST SP 800-40r4", "ISO/IEC 27001:2022 A.8.8", "CVSS v3.1 7",
                   "OSV schema 1.6"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        host: Host = target.spec
        feeds = ctx.fleet.feeds
        if not feeds.advisories:
            return {"host": host.name, "feeds": [], "matches": []}
        try:
            advisories = load_feeds(feeds.advisories)
            whitelist = load_whitelist(feeds.whitelist)
        except AdvisoryError as exc:
            raise ProbeError(str(exc), kind="config") from None
        state = ctx.hosts.system_state(host, ctx.deadline)
        pkgs = packages(ctx.hosts.closure(host, state["current"], ctx.deadline))
        return {"host": host.name, "system": state["current"],
                "nixos_version": state["nixos_version"], "packages": len(pkgs),
                "feeds": list(feeds.advisories), "advisories": len(advisories),
                "whitelist_entries": len(whitelist),
                "matches": match(advisories, pkgs, whitelist)}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        if not facts.get("feeds"):
            f.warn("no advisory feed configured ([feeds] advisories): closure not checked")
            return f.verdict("")
        today = observed_at(facts).date()
        muted = 0
        for m in facts["matches"]:
            wl = m.get("whitelist")
            expired = ""
            if wl:
                if today <= dt.date.fromisoformat(wl["until"]):
                    muted += 1
                    continue
                expired = f" (whitelist entry {wl['entry']} expired {wl['until']})"
            score = f" {m['score']:.1f}" if m.get("score") is not None else ""
            text = (f"{m['id']} ({m['severity']}{score}) in {m['package']} {m['version']}"
                    f"{expired}")
            if m["severity"] == "critical":
                f.fail(text)
            else:
                f.warn(text)
        note = f", {muted} muted by the whitelist" if muted else ""
        return f.verdict(f"{facts.get('packages', 0)} packages, no known advisory{note}")


def _service_host(ctx: ProbeContext, service: Service) -> Host | None:
    return next((h for h in ctx.fleet.hosts if h.name == service.host), None)


@register
class Version(Check):
    meta = CheckMeta(
        id="drift.version",
        family="drift",
        title="Service runs its declared version, and the declared version is current",
        query=(
            "running version (nodeinfo, `/api/v2/instance`, `/api/v1/config`, federation version, "
            "Garage `garageVersion`) vs declared version"
        ),
        verdicts=(
            "fail running != declared; warn declared behind the newest release in the release feed"
        ),
        applies_to=SERVICE_KINDS,
        interval=3600,
        timeout=30,
        standards=("NodeInfo 2.1 software.version", "Matrix S2S API GET /_matrix/federation/"
                   "v1/version", "Garage admin API v2 GetClusterStatus", "NIST SP 800-40r4"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        service: Service = target.spec
        running = running_version(ctx, service)
        facts: dict[str, Any] = {"service": service.name, "kind": service.kind,
                                 "declared": service.version, "running": running["version"],
                                 "source": running["source"]}
        if "nodes" in running:
            facts["nodes"] = running["nodes"]
        feed_path = ctx.fleet.feeds.release
        if feed_path:
            try:
                entry = load_release_feed(feed_path).get(service.kind)
                if entry:
                    facts["upstream"] = upstream_facts(entry, service.version or
                                                       running["version"])
            except FeedError as exc:
                facts["upstream_problem"] = str(exc)
        host = _service_host(ctx, service) if service.host else None
        if host is not None:
            facts.update(self._closure_version(host, service, ctx))
        return facts

    @staticmethod
    def _closure_version(host: Host, service: Service, ctx: ProbeContext) -> dict[str, Any]:
        """The service package's version in the host's running closure (best effort)."""
        name = CLOSURE_PACKAGE[service.kind]
        try:
            state = ctx.hosts.system_state(host, ctx.deadline)
            found = sorted({p.version for p in packages(
                ctx.hosts.closure(host, state["current"], ctx.deadline)) if p.name == name})
        except ProbeError as exc:
            return {"closure_problem": exc.reason}
        return {"closure_version": ", ".join(found) if found else None}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        running, declared = facts["running"], facts.get("declared")
        if declared and not same(running, declared):
            f.fail(f"runs {running}, declared {declared}")
        for node in facts.get("nodes") or []:
            version = node.get("version")
            if version and not same(version, declared or running):
                f.fail(f"node {node.get('hostname') or node.get('id')} runs {version}, "
                       f"expected {declared or running}")
        in_closure = facts.get("closure_version")
        if in_closure and not same(in_closure, running):
            f.warn(f"the host's closure has {facts['kind']} {in_closure} but the service "
                   f"reports {running}: restart pending?")
        upstream = facts.get("upstream")
        if upstream:
            behind = behind_summary(declared or running, upstream, observed_at(facts).date())
            if behind:
                f.warn(behind)
        if facts.get("upstream_problem"):
            f.warn(f"release feed unusable: {facts['upstream_problem']}")
        newest = " (newest upstream)" if upstream and not upstream.get("newer") else ""
        as_declared = "as declared" if declared else "(no declared version)"
        return f.verdict(f"runs {running} {as_declared}{newest}")
