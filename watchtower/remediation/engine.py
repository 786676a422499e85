"""Remediation: plan, policy, apply, verify, undo — every step audited.

The loop a provider can trust:
1. `propose` turns failing check states into Plans (concrete argv lists or API calls, a diff a
   person reads, the undo steps, the checks that verify) — or a stated reason why nothing needs
   doing. A proposal is stored with the policy in force: `off` (nothing stored), `dry-run`
   (stored, never applied), `approve` (waits for a person), `auto`.
2. `apply` re-reads the policy *now* (a reload may have tightened it), refuses anything outside
   it, refuses a plan whose signature (an HMAC with a key kept outside the database) does not
   match — the database is never trusted to carry commands — takes the host lock, checks the
   rate limit and cooldown, moves the row `approved -> applying` by compare-and-set (so a second
   process or a forged request cannot apply it twice), writes the undo steps to the audit trail
   before the first change, runs the steps, confirms those that finish on their own (a detached
   NixOS switch) or whose connection dropped by asking the host over fresh connections, waits a
   settle delay, re-runs the triggering checks, and undoes the change when they still fail. The
   final state says what happened: `applied`, `rolled_back` or `failed`.
3. `recover` at start-up resolves proposals a crash left `applying`/`verifying`: it verifies
   the host as it is; if the checks pass the change stands, else it is undone. Never re-applied.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from watchtower.config import Fleet, Host
from watchtower.errors import ProbeError
from watchtower.model import Status, Target, utcnow
from watchtower.net import powerdns
from watchtower.net.transport import LocalTransport, Transport
from watchtower.probe import registry
from watchtower.probe.clients import DnsApis, open_host
from watchtower.remediation.limits import rate_refusal
from watchtower.store import (
    OPEN_STATES,
    AuditRow,
    HostLockRow,
    RemediationRow,
    StateRow,
    Store,
)

log = logging.getLogger(__name__)

Policy = Literal["off", "dry-run", "approve", "auto"]
OUTPUT_CAP = 4000
CONFIRM_INTERVAL = 1.0  # seconds between confirmation attempts
CONFIRM_ATTEMPT_TIMEOUT = 20.0  # one attempt's command, at most


@dataclass(frozen=True, slots=True)
class RemediationMeta:
    id: str
    title: str
    triggers: tuple[str, ...]
    settle_seconds: float = 5.0
    max_per_hour: int = 3
    cooldown_seconds: float = 600.0


@dataclass
class Step:
    """One concrete action: a command on a fleet host (argv list), an HTTP API call, or a named
    in-process action (`action`, registered with `register_action`, arguments in `body`: a
    change that needs a library, like a commit to a DNS repository or an octoDNS sync)."""

    description: str
    kind: Literal["command", "http", "action"]
    host: str | None = None
    argv: list[str] | None = None
    method: str | None = None
    url: str | None = None
    body: Any = None
    secret: str | None = None  # name of the config entry whose Secret authenticates the call
    timeout: float = 120.0
    # A step whose effect completes after it returns (a detached switch), or whose connection
    # may drop mid-way, is *confirmed*: `confirm_argv` runs on the same host through a fresh
    # connection every second until its stdout contains `confirm_expect`, for at most
    # `confirm_timeout` seconds. Only the host's own state decides the step's outcome.
    confirm_argv: list[str] | None = None
    confirm_expect: str | None = None
    confirm_timeout: float = 300.0
    action: str | None = None

    def render(self) -> str:
        if self.kind == "command":
            return f"[{self.host}] " + " ".join(_show_arg(a) for a in self.argv or [])
        if self.kind == "action":
            return f"{self.action} {json.dumps(self.body, sort_keys=True)}"
        return f"{self.method} {self.url}" + (f" {json.dumps(self.body)}" if self.body else "")


def _show_arg(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_./:=@+," for c in arg) else repr(arg)


@dataclass
class Plan:
    remediation: str
    target: str
    host: str
    summary: str
    diff: str
    steps: list[Step]
    undo: list[Step]
    verify: list[str]
    guard: str | None = None  # why it must not run unless forced (e.g. a migration boundary)
    data: dict[str, Any] = field(default_factory=dict)
    # The change takes effect when someone else acts (an operator merges and syncs a commit):
    # `applied` once the steps succeed, `verified` when the checks pass later; never undone
    # automatically for checks that fail before then (`Remediator.verify_pending`).
    verify_later: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        raw = json.loads(text)
        raw["steps"] = [Step(**s) for s in raw["steps"]]
        raw["undo"] = [Step(**s) for s in raw["undo"]]
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class NoAction:
    reason: str


@dataclass(frozen=True, slots=True)
class NotPlanned:
    """A failing check a remediation could fix, and why no plan was made for it this time
    (the remediation's own NoAction reason, or the engine's: policy, an open plan, limits)."""

    remediation: str
    check_id: str
    target: str
    reason: str

    def text(self) -> str:
        return (f"{self.remediation} could fix {self.check_id} on {self.target}, but "
                f"{self.reason}")


@dataclass
class Proposals:
    """What one round of planning did: the plans stored, the fixes not planned (with why),
    and the failing checks no remediation is triggered by."""

    created: list[RemediationRow] = field(default_factory=list)
    not_planned: list[NotPlanned] = field(default_factory=list)
    unfixable: list[StateRow] = field(default_factory=list)


@dataclass(slots=True)
class StepOutcome:
    """What a step did. `unknown`: the transport failed (SSH dropped), so whether the command
    took effect on the host cannot be told from here — a confirmation must find out."""

    ok: bool
    output: str
    unknown: bool = False


#: In-process actions by name: (body, timeout) -> outcome. Only watchtower's own code registers
#: them, and a plan names one by string, so a stored plan can never name arbitrary code.
ACTIONS: dict[str, Callable[[Any, float], StepOutcome]] = {}


def register_action(name: str) -> Callable[[Callable[[Any, float], StepOutcome]],
                                           Callable[[Any, float], StepOutcome]]:
    def add(func: Callable[[Any, float], StepOutcome]) -> Callable[[Any, float], StepOutcome]:
        ACTIONS[name] = func
        return func

    return add


def run_action(step: Step) -> StepOutcome:
    func = ACTIONS.get(step.action or "")
    if func is None:
        return StepOutcome(False, f"no action named {step.action!r}")
    return func(step.body, step.timeout)


class Remediation:
    """Base of every remediation: match failing checks, make a Plan; steps run by the engine."""

    meta: ClassVar[RemediationMeta]

    @classmethod
    def triggers(cls, fleet: Fleet) -> tuple[str, ...]:
        """The checks whose failure this remediation can fix: the one source of the links
        between checks and fixes (reports, the dashboard and `watchtower checks` read it
        through the registry). By default the declared `meta.triggers`; a remediation whose
        reach depends on the fleet file (DNS templates) adds to them."""
        return cls.meta.triggers

    def plan(self, state: StateRow, ctx: RemediationContext) -> Plan | NoAction:
        raise NotImplementedError

    def observe(self, ctx: RemediationContext) -> None:
        """Learn from the latest sweep before planning (e.g. which generations were good)."""


@dataclass
class RemediationContext:
    """What plans and steps may use: the fleet, the store, and how to reach hosts and APIs."""

    fleet: Fleet
    store: Store
    run_command: Callable[[str, list[str], float], StepOutcome]
    call_http: Callable[[Step], StepOutcome]
    verify: Callable[[Target, list[str]], list[Status]]
    run_action: Callable[[Step], StepOutcome] = run_action

    def target(self, name: str) -> Target | None:
        return next((t for t in self.fleet.targets() if t.name == name), None)

    def open_host(self, host: Host) -> AbstractContextManager[Transport]:
        """A transport to a `[[hosts]]` entry for reading facts while planning (the probe's
        mapping from config, watchtower/probe/clients.py)."""
        return open_host(host)

    def dns_apis(self) -> DnsApis:
        """The fleet's DNS APIs as it is now (a reloaded fleet file counts at once)."""
        return DnsApis(self.fleet.dns_apis, self.fleet.probe.dns_api_timeout)


class PolicyRefused(Exception):
    """Applying was refused: outside policy, locked, rate-limited, guarded or already done."""


def policy_for(fleet: Fleet, remediation: str, target: str) -> Policy:
    """Most specific wins: `id@target`, then `id`, then the default."""
    policies = fleet.remediation.policies
    return policies.get(f"{remediation}@{target}",
                        policies.get(remediation, fleet.remediation.default_policy))


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Remediator:
    """The engine. One per process; safe against other processes through the database."""

    def __init__(self, fleet: Fleet, store: Store, ctx: RemediationContext) -> None:
        self.fleet = fleet
        self.store = store
        self.ctx = ctx
        self.sleep: Callable[[float], None] = time.sleep  # the settle delay (tests skip it)
        self.confirm_interval = CONFIRM_INTERVAL

    def reconfigure(self, fleet: Fleet) -> None:
        """A reloaded fleet file: its policies apply to every later apply."""
        self.fleet = fleet
        self.ctx.fleet = fleet

    # -- audit ------------------------------------------------------------------------------

    def audit(self, rid: int, actor: str, action: str, detail: str = "", ok: bool = True
              ) -> None:
        self.store.remediation.audit(AuditRow(remediation_id=rid, at=utcnow(), actor=actor,
                                              action=action, detail=detail[:OUTPUT_CAP], ok=ok))

    def history(self, rid: int | None = None) -> list[AuditRow]:
        return self.store.remediation.audit_trail(rid)

    def get(self, rid: int) -> RemediationRow | None:
        return self.store.remediation.get(rid)

    def proposals(self, states: Iterable[str] | None = None) -> list[RemediationRow]:
        return self.store.remediation.proposals(states)

    def _transition(self, rid: int, expected: Iterable[str], new: str, **values: Any) -> bool:
        """Compare-and-set on the state column: True when this caller made the change."""
        return self.store.remediation.transition(rid, expected, new, utcnow(), **values)

    # -- propose ----------------------------------------------------------------------------

    def propose(self, states: list[StateRow] | None = None) -> list[RemediationRow]:
        """Plan a fix for every failing state a remediation is triggered by."""
        return self.plan_all(states).created

    def plan_all(self, states: list[StateRow] | None = None) -> Proposals:
        """Plan a fix for every failing state with a known fix (`registry.fixes`, the one
        check -> fix link), one open plan per fix and target, and say for each fix that was
        not planned why not."""
        states = self.store.current() if states is None else states
        fixes = registry.fixes(self.fleet)
        remediations = registry.remediations()
        open_rows = {(r.remediation, r.target): r for r in self.proposals(OPEN_STATES)}
        out = Proposals()
        for st in (st for st in states if st.status == Status.FAIL):
            rids = [rid for rid in fixes.get(st.check_id, ()) if rid in remediations]
            if not rids:
                out.unfixable.append(st)
            for rid in rids:
                made = self._plan_one(remediations[rid], st, open_rows)
                if isinstance(made, RemediationRow):
                    open_rows[(rid, st.target)] = made
                    out.created.append(made)
                else:
                    out.not_planned.append(NotPlanned(rid, st.check_id, st.target, made))
        return out

    def _plan_one(self, cls: type[Remediation], st: StateRow,
                  open_rows: dict[tuple[str, str], RemediationRow]) -> RemediationRow | str:
        """The stored plan for one failing state, or why there is none."""
        rid = cls.meta.id
        open_row = open_rows.get((rid, st.target))
        if open_row is not None:
            return (f"plan #{open_row.id} for {st.target} is still {open_row.state} (one open "
                    "plan per fix and target)")
        policy = policy_for(self.fleet, rid, st.target)
        if policy == "off":
            return f"its policy is off for {st.target} ([remediation] policies)"
        try:
            outcome = cls().plan(st, self.ctx)
        except ProbeError as exc:
            # One remediation that cannot read its host (not NixOS, SSH down) must not
            # keep the others from planning, nor crash `watchtower run`'s run_auto.
            log.warning("%s on %s: cannot plan: %s", rid, st.target, exc.reason)
            return f"it cannot plan: {exc.reason}"
        if isinstance(outcome, NoAction):
            log.debug("%s on %s: nothing to do (%s)", rid, st.target, outcome.reason)
            return outcome.reason
        limited = rate_refusal(self.store, self.fleet, cls.meta, outcome.host, st.target,
                               utcnow())
        if limited is not None:
            return limited
        return self._store_plan(outcome, policy, [st.check_id])

    def _store_plan(self, plan: Plan, policy: Policy, triggers: list[str]) -> RemediationRow:
        state = {"dry-run": "dry_run", "approve": "awaiting_approval",
                 "auto": "approved"}[policy]
        now = utcnow()
        row = RemediationRow(
            remediation=plan.remediation, target=plan.target, host=plan.host,
            trigger_checks=json.dumps(triggers), policy=policy, state=state,
            summary=plan.summary, plan=plan.to_json(), created_at=now, updated_at=now,
            approved_by="auto" if policy == "auto" else None,
            approved_at=now if policy == "auto" else None,
        )
        row.plan_signature = self._signature(row)
        row = self.store.remediation.add(row)
        assert row.id is not None
        self.audit(row.id, "auto", "planned", f"policy {policy}: {plan.summary}\n{plan.diff}")
        return row

    # -- approve / reject -------------------------------------------------------------------

    def approve(self, rid: int, user: str) -> None:
        row = self._require(rid)
        policy = policy_for(self.fleet, row.remediation, row.target)
        if policy not in ("approve", "auto"):
            self.audit(rid, user, "approve-refused", f"policy is {policy}", ok=False)
            raise PolicyRefused(f"remediation {rid}: policy is {policy}; it cannot be approved")
        if not self._transition(rid, ["awaiting_approval"], "approved", approved_by=user,
                                approved_at=utcnow()):
            raise PolicyRefused(f"remediation {rid} is {row.state}, not awaiting approval")
        self.audit(rid, user, "approved")

    def reject(self, rid: int, user: str, reason: str = "") -> None:
        if not self._transition(rid, ["awaiting_approval", "approved"], "rejected",
                                finished_at=utcnow(), outcome=f"rejected by {user}"):
            raise PolicyRefused(f"remediation {rid} cannot be rejected in its state")
        self.audit(rid, user, "rejected", reason)

    def _require(self, rid: int) -> RemediationRow:
        row = self.get(rid)
        if row is None:
            raise PolicyRefused(f"no remediation {rid}")
        return row

    # -- apply ------------------------------------------------------------------------------

    def apply(self, rid: int, actor: str, *, force: bool = False) -> RemediationRow:
        """Apply an approved plan under the policy in force now; returns the final row."""
        row = self._require(rid)
        if row.state != "approved":
            raise PolicyRefused(f"remediation {rid} is {row.state}, not approved")
        refused = self._policy_refusal(row)
        if refused is not None:
            self.audit(rid, actor, "apply-refused", refused, ok=False)
            raise PolicyRefused(f"remediation {rid}: {refused}")
        plan = Plan.from_json(row.plan)
        stale = self._forged(row)
        if stale:
            self.audit(rid, actor, "apply-refused", stale, ok=False)
            raise PolicyRefused(f"remediation {rid} refused: {stale}")
        if plan.guard and not force:
            self.audit(rid, actor, "apply-refused", plan.guard, ok=False)
            raise PolicyRefused(f"remediation {rid} refused: {plan.guard} (use --force)")
        meta = registry.remediations()[row.remediation].meta
        self._check_rate(row, meta)
        if not self._lock(row):
            raise PolicyRefused(f"host {row.host} is being remediated by another change")
        try:
            if not self._transition(rid, ["approved"], "applying", applied_by=actor):
                raise PolicyRefused(f"remediation {rid} was taken by another process")
            self.audit(rid, actor, "undo-recorded",
                       "\n".join(s.render() for s in plan.undo) or "(nothing to undo)")
            for i, step in enumerate(plan.steps, 1):
                outcome = self._run(rid, actor, step, f"step {i}/{len(plan.steps)}")
                if not outcome.ok:
                    self._undo(rid, actor, plan)
                    self._finish(rid, "applying", "failed", f"step {i} failed; undone")
                    return self._require(rid)
            if plan.verify_later:
                self._finish(rid, "applying", "applied", "applied; verified once the checks "
                             f"pass ({', '.join(plan.verify)}), after the operator's sync")
                return self._require(rid)
            self._transition(rid, ["applying"], "verifying")
            settle = self.fleet.remediation.settle_seconds
            self.sleep(meta.settle_seconds if settle is None else settle)
            if self._verify(rid, actor, plan):
                self._finish(rid, "verifying", "applied", "verified: the checks pass")
            else:
                self._undo(rid, actor, plan)
                self._finish(rid, "verifying", "rolled_back",
                             "verification failed; the change was undone")
        finally:
            self._unlock(row.host, rid)
        return self._require(rid)

    def _policy_refusal(self, row: RemediationRow) -> str | None:
        """Why the policy in force now does not let an approved plan run, or None: `auto`
        runs, `approve` runs what a person approved, nothing else runs."""
        policy = policy_for(self.fleet, row.remediation, row.target)
        if policy == "auto" or (policy == "approve" and row.approved_by not in (None, "auto")):
            return None
        return (f"policy {policy} does not allow applying it (approve needs a person's "
                "approval)")

    def _plan_key(self) -> bytes:
        """The key that signs plans, kept in the state directory (never in the database)."""
        from watchtower.config import default_state_dir

        path = default_state_dir(self.fleet.store) / "remediation-plan.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, secrets.token_bytes(32))
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        return path.read_bytes()

    def _signature(self, row: RemediationRow) -> str:
        """HMAC over what apply would run: the remediation, target, host and whole plan."""
        message = "\0".join([row.remediation, row.target, row.host, row.plan]).encode()
        return hmac.new(self._plan_key(), message, hashlib.sha256).hexdigest()

    def _forged(self, row: RemediationRow) -> str | None:
        """Why a stored plan may not run (None when it is one this watchtower made).

        The database is not trusted to carry commands: a row written into it directly, or a
        plan edited after it was made, does not carry a valid signature and never runs
        (tests/reliability/test_security_remediation.py writes such rows).
        """
        if not hmac.compare_digest(self._signature(row), row.plan_signature or ""):
            return ("the stored plan does not carry this watchtower's signature (it was not "
                    "made by watchtower, or it was changed after it was made)")
        return None

    def _run(self, rid: int, actor: str, step: Step, label: str) -> StepOutcome:
        try:
            if step.kind == "command":
                assert step.host is not None and step.argv is not None
                outcome = self.ctx.run_command(step.host, step.argv, step.timeout)
            elif step.kind == "action":
                outcome = self.ctx.run_action(step)
            else:
                outcome = self.ctx.call_http(step)
        except Exception as exc:  # a transport failure: the step's effect is unknown
            outcome = StepOutcome(False, f"transport failed: {type(exc).__name__}: {exc}",
                                  unknown=True)
        self.audit(rid, actor, label, f"{step.render()}\n{outcome.output}", ok=outcome.ok)
        if step.confirm_argv and (outcome.ok or outcome.unknown):
            return self._confirm(rid, actor, step, label)
        return outcome

    def _confirm(self, rid: int, actor: str, step: Step, label: str) -> StepOutcome:
        """Ask the host, over a new connection each time, whether the step took effect.

        A detached switch returns before it is done, and a dropped connection says nothing
        about what happened on the host; either way the host's own state (for a switch: where
        current_system points) is the only truth. Every attempt is audited."""
        assert step.confirm_argv is not None and step.host is not None
        expect = step.confirm_expect or ""
        deadline = time.monotonic() + step.confirm_timeout
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            try:
                got = self.ctx.run_command(step.host, step.confirm_argv,
                                           max(1.0, min(CONFIRM_ATTEMPT_TIMEOUT, remaining)))
            except Exception as exc:  # the host may still be unreachable: try again
                got = StepOutcome(False, f"transport failed: {type(exc).__name__}: {exc}",
                                  unknown=True)
            confirmed = got.ok and expect in got.output
            self.audit(rid, actor, f"{label} confirm",
                       f"attempt {attempt}: {' '.join(step.confirm_argv)} -> "
                       f"{got.output.strip()[-500:] or '(no output)'}"
                       f"{'' if confirmed else f' (waiting for {expect})'}", ok=confirmed)
            if confirmed:
                return StepOutcome(True, f"confirmed after {attempt} attempt(s)")
            if time.monotonic() + self.confirm_interval > deadline:
                self.audit(rid, actor, f"{label} confirm-timeout",
                           f"{expect} not seen within {step.confirm_timeout:g}s", ok=False)
                return StepOutcome(False, f"not confirmed within {step.confirm_timeout:g}s")
            time.sleep(self.confirm_interval)

    def _undo(self, rid: int, actor: str, plan: Plan) -> bool:
        ok = True
        for i, step in enumerate(plan.undo, 1):
            ok = self._run(rid, actor, step, f"undo {i}/{len(plan.undo)}").ok and ok
        return ok

    def _verify(self, rid: int, actor: str, plan: Plan) -> bool:
        target = self.ctx.target(plan.target)
        if target is None:
            self.audit(rid, actor, "verify", f"target {plan.target} is gone", ok=False)
            return False
        statuses = self.ctx.verify(target, plan.verify)
        ok = bool(statuses) and all(s in (Status.OK, Status.WARN) for s in statuses)
        self.audit(rid, actor, "verify", f"{', '.join(plan.verify)}: "
                   f"{', '.join(str(s) for s in statuses)}", ok=ok)
        return ok

    def _finish(self, rid: int, expected: str, state: str, outcome: str) -> None:
        self._transition(rid, [expected], state, finished_at=utcnow(), outcome=outcome)
        self.audit(rid, "auto", state, outcome, ok=state == "applied")
        log.info("remediation %d: %s (%s)", rid, state, outcome)

    def _check_rate(self, row: RemediationRow, meta: RemediationMeta) -> None:
        reason = rate_refusal(self.store, self.fleet, meta, row.host, row.target, utcnow())
        if reason is not None:
            assert row.id is not None
            self.audit(row.id, "auto", "rate-limited", reason, ok=False)
            raise PolicyRefused(f"rate limit: {reason}")

    # -- locks ------------------------------------------------------------------------------

    def _lock(self, row: RemediationRow) -> bool:
        assert row.id is not None
        now = utcnow()
        expires = now + dt.timedelta(seconds=self.fleet.remediation.lock_seconds)
        return self.store.remediation.lock(
            HostLockRow(host=row.host, remediation_id=row.id, holder=_holder(), acquired_at=now,
                        expires_at=expires), now)

    def _unlock(self, host: str, rid: int) -> None:
        self.store.remediation.unlock(host, rid)

    def revert(self, rid: int, actor: str) -> RemediationRow:
        """Undo an applied remediation on request (a person changed their mind)."""
        row = self._require(rid)
        if not self._transition(rid, ["applied", "verified"], "reverting"):
            raise PolicyRefused(f"remediation {rid} is {row.state}; only applied ones revert")
        if not self._lock(row):
            self._transition(rid, ["reverting"], row.state)
            raise PolicyRefused(f"host {row.host} is being remediated by another change")
        try:
            ok = self._undo(rid, actor, Plan.from_json(row.plan))
            self._finish(rid, "reverting", "reverted" if ok else "failed",
                         f"undone on request of {actor}" if ok else "undo failed")
        finally:
            self._unlock(row.host, rid)
        return self._require(rid)

    # -- after a crash ----------------------------------------------------------------------

    def recover(self) -> list[int]:
        """Resolve proposals a crash left half-done: verify, keep or undo; never re-apply."""
        resolved = []
        for row in self.proposals(["applying", "verifying"]):
            assert row.id is not None
            plan = Plan.from_json(row.plan)
            self.audit(row.id, "auto", "interrupted", f"found {row.state} after a restart")
            self._transition(row.id, [row.state], "verifying")
            if self._verify(row.id, "auto", plan):
                self._finish(row.id, "verifying", "applied",
                             "interrupted, then verified after restart")
            else:
                self._undo(row.id, "auto", plan)
                self._finish(row.id, "verifying", "rolled_back",
                             "interrupted; verification failed after restart; undone")
            self._unlock(row.host, row.id)
            resolved.append(row.id)
        return resolved

    def verify_pending(self) -> list[int]:
        """Plans applied with `verify_later` whose checks pass now become `verified` (a
        commit for review, once the operator merged and synced it). Checks that still fail
        leave them `applied`, with nothing audited: they wait for a person."""
        done = []
        for row in self.proposals(["applied"]):
            assert row.id is not None
            plan = Plan.from_json(row.plan)
            target = self.ctx.target(plan.target)
            if not plan.verify_later or target is None:
                continue
            statuses = self.ctx.verify(target, plan.verify)
            passing = bool(statuses) and all(s in (Status.OK, Status.WARN) for s in statuses)
            if passing and self._transition(row.id, ["applied"], "verified"):
                self.audit(row.id, "auto", "verified", f"{', '.join(plan.verify)}: "
                           f"{', '.join(str(s) for s in statuses)}")
                done.append(row.id)
        return done

    def run_auto(self) -> list[RemediationRow]:
        """Learn, verify what waits for it, propose, then apply what the policy allows (the
        scheduler calls this after each sweep)."""
        for cls in registry.remediations().values():
            cls().observe(self.ctx)
        self.verify_pending()
        self.propose()
        return self.apply_approved()

    def apply_approved(self) -> list[RemediationRow]:
        """Apply every approved plan the policy in force lets run: `auto` ones, and `approve`
        ones a person approved (`watchtower run` does this within seconds of an approval).
        Plans the policy or a limit holds back stay approved, with nothing audited, until
        they may run (an apply asked for by a person is audited when refused)."""
        done = []
        remediations = registry.remediations()
        for row in self.proposals(["approved"]):
            assert row.id is not None
            cls = remediations.get(row.remediation)
            if cls is None or self._policy_refusal(row) is not None:
                continue
            waiting = rate_refusal(self.store, self.fleet, cls.meta, row.host, row.target,
                                   utcnow())
            if waiting is not None:
                log.debug("remediation %d waits: %s", row.id, waiting)
                continue
            try:
                done.append(self.apply(row.id, "auto"))
            except PolicyRefused as exc:
                log.info("remediation %d not applied: %s", row.id, exc)
        return done


def plans_text(row: RemediationRow) -> str:
    plan = Plan.from_json(row.plan)
    lines = [f"#{row.id} {row.remediation} on {row.target} [{row.state}, policy {row.policy}]",
             f"  {plan.summary}"]
    lines += [f"  diff: {line}" for line in plan.diff.splitlines()]
    lines += [f"  step: {s.render()}" for s in plan.steps]
    lines += [f"  undo: {s.render()}" for s in plan.undo]
    lines.append(f"  verify: {', '.join(plan.verify)}")
    if plan.guard:
        lines.append(f"  guard: {plan.guard}")
    return "\n".join(lines)


def default_context(fleet: Fleet, store: Store) -> RemediationContext:
    """The real way out: commands over the hosts' transports, API calls with the configured
    keys, verification by re-running the checks on the target (results are stored). Each call
    reads `ctx.fleet`, so a reloaded fleet file takes effect at once."""
    from watchtower.probe.sweep import run_sweep

    def run_command(host_name: str, argv: list[str], timeout: float) -> StepOutcome:
        if host_name == "@local":  # runs on the appliance itself (nixos-rebuild --target-host)
            result = LocalTransport().run(argv, timeout)
            return StepOutcome(result.ok, (result.stdout + result.stderr)[-OUTPUT_CAP:])
        host = next((h for h in ctx.fleet.hosts if h.name == host_name), None)
        if host is None:
            return StepOutcome(False, f"no [[hosts]] entry named {host_name!r}")
        with ctx.open_host(host) as transport:
            result = transport.run(argv, timeout)
        output = (result.stdout + result.stderr)[-OUTPUT_CAP:]
        if host.ssh and result.rc < 0:
            # The ssh client itself was killed: the remote command may or may not have run.
            return StepOutcome(False, f"ssh client killed by signal {-result.rc}\n{output}",
                               unknown=True)
        return StepOutcome(result.ok, output)

    def call_http(step: Step) -> StepOutcome:
        api = ctx.dns_apis().named(step.secret)
        assert step.method is not None and step.url is not None
        answer = powerdns.request(step.method, step.url, body=step.body,
                                  api_key=api.endpoint.api_key if api is not None else None,
                                  timeout=step.timeout)
        return StepOutcome(answer.ok, f"HTTP {answer.status} {answer.text}")

    def verify(target: Target, check_ids: list[str]) -> list[Status]:
        checks = {cid: c for cid, c in registry.checks().items() if cid in check_ids}
        # One name may be a zone, a mail domain and more (alpha.test is both in the lab): the
        # checks run on each target of that name they apply to, not only on the first found.
        named = [t for t in ctx.fleet.targets() if t.name == target.name] or [target]
        outcome = run_sweep(ctx.fleet, store, checks, targets=named, schedule="verify",
                            kind="verify")
        # The sweep also runs what the checks stand on; a blocking prerequisite makes them
        # `error`, so their own statuses are the verdict.
        return [r.status for cid in check_ids for r in outcome.of(cid)]

    ctx = RemediationContext(fleet, store, run_command, call_http, verify)
    return ctx
