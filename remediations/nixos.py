"""nixos.* remediations: back to the last known-good generation, or to the declared one.

- `nixos.rollback` switches the system profile to the newest generation under which all of the
  host's checks passed (learnt from watchtower's own sweeps, see `learn_known_good`) — or to an
  explicit generation N — and runs that generation's `switch-to-configuration switch`.
- `nixos.redeploy` runs `nixos-rebuild switch --flake REF --target-host HOST` from the
  appliance to bring a drifted host back to its declared configuration; if the host fails its
  checks within the settle window, the engine undoes it (a switch back to the generation it
  replaced).
Both refuse, unless forced, a rollback across a service version whose database migrations
cannot be undone (`services[].irreversible_migrations`). Switches run detached
(`hosts[].detach`: a transient `systemd-run` unit, or `setsid --fork` on hosts without systemd),
or through the privileged helper of `services.watchtower-target`, which detaches itself; so a
lost SSH connection cannot leave a half-switched host. The engine then *confirms* the switch by
reading `current_system` over fresh connections until it points at the chosen system.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from watchtower.config import Fleet, Host
from watchtower.inventory import nixos as facts
from watchtower.inventory.storepaths import packages, versions_by_name
from watchtower.inventory.versions import compare, version_key
from watchtower.model import Status
from watchtower.net.transport import SshDestination
from watchtower.probe.registry import register_remediation
from watchtower.remediation.api import (
    NoAction,
    Plan,
    Remediation,
    RemediationContext,
    RemediationMeta,
    Step,
)
from watchtower.store import StateRow, Store, aware

FACT_TIMEOUT = 60.0
GENERATION_CHECKS = ("drift.generation", "drift.reboot")
#: Which package in a closure carries each service kind's version.
PACKAGE_OF_KIND = {"mastodon": "mastodon", "peertube": "peertube", "pixelfed": "pixelfed",
                   "synapse": "matrix-synapse", "garage": "garage"}


def host_of(fleet: Fleet, target: str) -> Host | None:
    """The host a target runs on: the host itself, or the `host` of a service."""
    hosts = {h.name: h for h in fleet.hosts}
    if target in hosts:
        return hosts[target]
    service = next((s for s in fleet.services if s.name == target), None)
    return hosts.get(service.host) if service is not None and service.host else None


def related_targets(fleet: Fleet, host: Host) -> set[str]:
    return {host.name} | {s.name for s in fleet.services if s.host == host.name}


def generation_number(profile_link: str | None) -> int | None:
    m = re.search(r"-(\d+)-link$", profile_link or "")
    return int(m.group(1)) if m else None


def current_generation(gens: list[dict[str, object]], current: str,
                       profile: str | None) -> int | None:
    """The generation the host runs: the profile link's number, else the one whose store
    path is the running system (the newest such, when two generations share a path)."""
    number = generation_number(profile)
    if number is not None:
        return number
    matches = [int(str(g["number"])) for g in gens if g.get("path") == current]
    return max(matches) if matches else None


def learn_known_good(store: Store, fleet: Fleet) -> list[tuple[str, str]]:
    """Record, per host, the running system when every check of the host and its services
    passed, each having run since that system was first seen."""
    learnt = []
    states = store.current()
    for host in fleet.hosts:
        names = related_targets(fleet, host)
        rows = [st for st in states if st.target in names]
        gen_state = next((st for st in rows if st.target == host.name
                          and st.check_id in GENERATION_CHECKS and st.evidence_id), None)
        if gen_state is None or any(Status(st.status).is_problem for st in rows):
            continue
        evidence = store.evidence(gen_state.evidence_id or 0)
        system = evidence.get("current")
        if not system:
            continue
        streak = store.streak(gen_state.result_id) if gen_state.result_id else None
        seen_since = aware(streak.first_at) if streak is not None else aware(gen_state.since)
        if any(aware(st.last_at) < seen_since for st in rows):
            continue  # some check has not run under this system yet
        store.remediation.saw_good(host.name, system, generation_number(evidence.get("profile")))
        learnt.append((host.name, system))
    return learnt


#: Runs in the forked, new-session child of `setsid`: log to a file, never to the SSH pipes
#: (which would keep the session open, and die with it). A constant script: the data (state
#: dir, program, log name) arrive as positional parameters, never inside the script text.
SETSID_SCRIPT = 'mkdir -p -- "$1" && exec "$2" switch </dev/null >>"$1/$3" 2>&1'


def activation_argv(host: Host, system: str, label: str) -> list[str]:
    """How `system`'s switch-to-configuration is started so that it outlives the connection.

    systemd-run (without --wait) hands it to PID 1 as a transient unit and returns at once;
    setsid --fork puts it in a new session for hosts without systemd; "none" runs it in the
    SSH session and waits (tests, or a host that is the appliance itself)."""
    program = f"{system}/bin/switch-to-configuration"
    if host.detach == "systemd-run":
        return ["systemd-run", "--collect", f"--unit=watchtower-{label}", "--",
                program, "switch"]
    if host.detach == "setsid":
        return ["setsid", "--fork", "sh", "-c", SETSID_SCRIPT, "watchtower-switch",
                host.state_dir, program, f"watchtower-{label}.log"]
    return [program, "switch"]


def confirm_fields(host: Host, system: str) -> dict[str, Any]:
    """A switch is done when current_system points at the chosen system (NixOS activation
    updates /run/current-system at its end) — read through a fresh connection."""
    return {"confirm_argv": ["readlink", "-e", "--", host.current_system],
            "confirm_expect": system, "confirm_timeout": host.switch_confirm_seconds}


def switch_steps(host: Host, generation: int, system: str) -> list[Step]:
    """The commands that make `generation` current and activate it on `host`."""
    confirm = confirm_fields(host, system)
    if host.privileged_helper:  # the helper detaches the activation itself
        return [Step(f"switch {host.name} to generation {generation}", "command", host.name,
                     [*host.privileged_helper, "switch-generation", str(generation)],
                     **confirm)]
    # No timestamp in the name: a plan must come out the same when made again at apply time
    # (the engine compares them), and systemd refusing a second live unit of the same name
    # keeps two switches to one generation from running at once.
    label = f"switch-{generation}"
    return [
        Step(f"point the system profile at generation {generation}", "command", host.name,
             [host.nix_env, "-p", host.profile, "--switch-generation", str(generation)]),
        Step(f"activate generation {generation}", "command", host.name,
             activation_argv(host, system, label), **confirm),
    ]


def migration_guard(fleet: Fleet, host: Host, running: dict[str, set[str]],
                    target: dict[str, set[str]]) -> str | None:
    """Why going from `running` to `target` package versions would undo an irreversible
    database migration of a service on this host (None when it would not)."""
    for service in fleet.services:
        if service.host != host.name or not service.irreversible_migrations:
            continue
        package = PACKAGE_OF_KIND.get(service.kind, service.kind)
        for boundary in service.irreversible_migrations:
            now_v = max(running.get(package, set()), default=None, key=version_key)
            then_v = max(target.get(package, set()), default=None, key=version_key)
            if now_v and then_v and compare(now_v, boundary) >= 0 > compare(then_v, boundary):
                return (f"{service.name}: going back from {package} {now_v} to {then_v} crosses "
                        f"the {boundary} database migration, which a generation switch does "
                        "not undo")
    return None


@register_remediation
class NixosRollback(Remediation):
    meta = RemediationMeta(
        id="nixos.rollback",
        title="Roll the host back to its last known-good generation",
        triggers=("host.units", "fedi.health", "matrix.version", "storage.health"),
        settle_seconds=10,
        max_per_hour=2,
        cooldown_seconds=1800,
    )

    def observe(self, ctx: RemediationContext) -> None:
        learn_known_good(ctx.store, ctx.fleet)

    def plan(self, state: StateRow, ctx: RemediationContext) -> Plan | NoAction:
        host = host_of(ctx.fleet, state.target)
        if host is None:
            return NoAction(f"{state.target} is not on a declared host")
        return self.plan_for(host, ctx, state.target, [state.check_id])

    def plan_for(self, host: Host, ctx: RemediationContext, target: str, verify: list[str],
                 generation: int | None = None) -> Plan | NoAction:
        with ctx.open_host(host) as t:
            gens = facts.generations(t, host, FACT_TIMEOUT)
            running = facts.system_state(t, host, FACT_TIMEOUT)
            by_number = {g["number"]: g for g in gens if g.get("path")}
            current = running["current"]
            current_gen = current_generation(gens, current, running.get("profile"))
            if generation is None:
                good_systems = {k.system for k in ctx.store.remediation.known_good(host.name)}
                good = [n for n, g in by_number.items()
                        if g["path"] in good_systems and g["path"] != current]
                if not good:
                    return NoAction(f"no known-good generation of {host.name} other than the "
                                    "running one")
                generation = max(good)
            if generation not in by_number:
                return NoAction(f"{host.name} has no generation {generation}")
            if current_gen is None or generation == current_gen:
                return NoAction(f"{host.name} already runs generation {generation}")
            chosen = by_number[generation]["path"]
            guard = migration_guard(
                ctx.fleet, host,
                versions_by_name(packages(facts.closure(t, host, current, FACT_TIMEOUT))),
                versions_by_name(packages(facts.closure(t, host, chosen, FACT_TIMEOUT))))
        return Plan(
            remediation=self.meta.id, target=target, host=host.name,
            summary=f"switch {host.name} from generation {current_gen} to {generation}",
            diff=f"- generation {current_gen}: {current}\n+ generation {generation}: {chosen}",
            steps=switch_steps(host, generation, chosen),
            undo=switch_steps(host, current_gen, current),
            verify=verify, guard=guard,
            data={"from": current_gen, "to": generation},
        )


def rebuild_argv(host: Host, destination: SshDestination) -> list[str]:
    """`nixos-rebuild switch --target-host` with the host's SSH settings.

    nixos-rebuild takes no port or key options; it passes NIX_SSHOPTS to every ssh it runs, so
    the port, the pinned known_hosts and the key go there (set through env(1), no shell). It
    splits NIX_SSHOPTS on blanks: paths with spaces cannot be passed this way."""
    opts = ["-p", str(destination.port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/dev/null"]
    if host.known_hosts:
        opts += ["-o", f"UserKnownHostsFile={host.known_hosts}"]
    if host.ssh_key is not None and host.ssh_key.file is not None:
        opts += ["-o", "IdentitiesOnly=yes", "-i", host.ssh_key.file]
    target = f"{destination.user}@{destination.host}" if destination.user else destination.host
    return ["env", f"NIX_SSHOPTS={' '.join(opts)}", "nixos-rebuild", "switch",
            "--flake", f"{host.flake}#{host.name}", "--target-host", target,
            "--use-remote-sudo"]


@register_remediation
class NixosRedeploy(Remediation):
    meta = RemediationMeta(
        id="nixos.redeploy",
        title="Redeploy the host's declared configuration",
        triggers=("drift.generation",),
        settle_seconds=30,
        max_per_hour=1,
        cooldown_seconds=3600,
    )

    def plan(self, state: StateRow, ctx: RemediationContext) -> Plan | NoAction:
        host = host_of(ctx.fleet, state.target)
        if host is None or host.flake is None:
            return NoAction(f"{state.target}: no flake declared (hosts[].flake)")
        if not host.ssh:
            return NoAction(f"{host.name}: redeploy needs hosts[].ssh for --target-host")
        with ctx.open_host(host) as t:
            running = facts.system_state(t, host, FACT_TIMEOUT)
            gens = facts.generations(t, host, FACT_TIMEOUT)
        current_gen = current_generation(gens, running["current"], running.get("profile"))
        if current_gen is None:
            return NoAction(f"cannot tell which generation {host.name} runs")
        destination = SshDestination.parse(host.ssh)
        return Plan(
            remediation=self.meta.id, target=state.target, host=host.name,
            summary=f"redeploy {host.flake}#{host.name} to {host.name}",
            diff=f"- {running['current']}\n+ the declared configuration {host.flake}#{host.name}",
            steps=[Step(f"nixos-rebuild switch to {host.name}", "command", "@local",
                        rebuild_argv(host, destination), timeout=3600)],
            undo=switch_steps(host, current_gen, running["current"]),
            # a redeploy that breaks the host's units is undone too, not only one that drifts
            verify=[state.check_id, "host.units"],
            data={"replaced_generation": current_gen,
                  "at": dt.datetime.now(dt.UTC).isoformat()},
        )
