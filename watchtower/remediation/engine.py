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

This module is the state machine alone. What a remediation is made of (Plan, Step, the base
class and its context) is api.py; whether a plan may run now is policy.py (policy, host lock),
limits.py (rates, cooldowns) and signing.py (plans this watchtower made); confirming a step
with the host is confirm.py; the real hosts and APIs are reached through live_context.py.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, NoReturn

from watchtower.config import Fleet
from watchtower.errors import ProbeError
from watchtower.model import Status, Target, utcnow
from watchtower.probe import registry
from watchtower.remediation.api import (
    OUTPUT_CAP,
    NoAction,
    NotPlanned,
    Plan,
    Proposals,
    Remediation,
    RemediationContext,
    RemediationMeta,
    Step,
    StepOutcome,
)
from watchtower.remediation.confirm import CONFIRM_INTERVAL, confirm
from watchtower.remediation.limits import rate_refusal
from watchtower.remediation.policy import (
    Policy,
    PolicyRefused,
    lock_host,
    policy_for,
    policy_refusal,
    unlock_host,
)
from watchtower.remediation.signing import forgery, signature
from watchtower.store import OPEN_STATES, AuditRow, RemediationRow, StateRow, Store

log = logging.getLogger(__name__)

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
        row.plan_signature = signature(self.fleet.store, row)
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
        plan, meta = self._admit(rid, row, actor, force)
        if not lock_host(self.store, self.fleet, row):
            raise PolicyRefused(f"host {row.host} is being remediated by another change")
        try:
            if not self._transition(rid, ["approved"], "applying", applied_by=actor):
                raise PolicyRefused(f"remediation {rid} was taken by another process")
            self._carry_out(rid, actor, plan, meta)
        finally:
            unlock_host(self.store, row.host, rid)
        return self._require(rid)

    def _admit(self, rid: int, row: RemediationRow, actor: str, force: bool
               ) -> tuple[Plan, RemediationMeta]:
        """The plan and its remediation's meta when the row may be applied now: approved,
        inside the policy in force, signed by this watchtower, not guarded (or forced) and
        within the limits. Else PolicyRefused, audited but for a row in another state."""
        if row.state != "approved":
            raise PolicyRefused(f"remediation {rid} is {row.state}, not approved")
        refused = policy_refusal(self.fleet, row)
        if refused is not None:
            self._refuse(rid, actor, refused, f"remediation {rid}: {refused}")
        plan = Plan.from_json(row.plan)
        stale = forgery(self.fleet.store, row)
        if stale:
            self._refuse(rid, actor, stale, f"remediation {rid} refused: {stale}")
        if plan.guard and not force:
            self._refuse(rid, actor, plan.guard,
                         f"remediation {rid} refused: {plan.guard} (use --force)")
        meta = registry.remediations()[row.remediation].meta
        self._check_rate(row, meta)
        return plan, meta

    def _refuse(self, rid: int, actor: str, reason: str, message: str) -> NoReturn:
        self.audit(rid, actor, "apply-refused", reason, ok=False)
        raise PolicyRefused(message)

    def _carry_out(self, rid: int, actor: str, plan: Plan, meta: RemediationMeta) -> None:
        """Record the undo, run the steps (a failed one: undo), then settle and verify (still
        failing: undo); a `verify_later` plan is left applied after its steps."""
        self.audit(rid, actor, "undo-recorded",
                   "\n".join(s.render() for s in plan.undo) or "(nothing to undo)")
        for i, step in enumerate(plan.steps, 1):
            if not self._run(rid, actor, step, f"step {i}/{len(plan.steps)}").ok:
                self._undo(rid, actor, plan)
                self._finish(rid, "applying", "failed", f"step {i} failed; undone")
                return
        if plan.verify_later:
            self._finish(rid, "applying", "applied", "applied; verified once the checks "
                         f"pass ({', '.join(plan.verify)}), after the operator's sync")
            return
        self._transition(rid, ["applying"], "verifying")
        settle = self.fleet.remediation.settle_seconds
        self.sleep(meta.settle_seconds if settle is None else settle)
        if self._verify(rid, actor, plan):
            self._finish(rid, "verifying", "applied", "verified: the checks pass")
        else:
            self._undo(rid, actor, plan)
            self._finish(rid, "verifying", "rolled_back",
                         "verification failed; the change was undone")

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
            outcome = StepOutcome.transport_failed(exc)
        self.audit(rid, actor, label, f"{step.render()}\n{outcome.output}", ok=outcome.ok)
        if step.confirm_argv and (outcome.ok or outcome.unknown):
            return confirm(self.ctx.run_command, step, label, partial(self.audit, rid, actor),
                           self.confirm_interval)
        return outcome

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
        ok, seen = self._checks(target, plan)
        self.audit(rid, actor, "verify", seen, ok=ok)
        return ok

    def _checks(self, target: Target, plan: Plan) -> tuple[bool, str]:
        """Run the plan's verifying checks on its target: whether they pass (each ok or warn,
        and at least one ran), and what they said, for the audit trail."""
        statuses = self.ctx.verify(target, plan.verify)
        ok = bool(statuses) and all(s in (Status.OK, Status.WARN) for s in statuses)
        return ok, f"{', '.join(plan.verify)}: {', '.join(str(s) for s in statuses)}"

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

    def revert(self, rid: int, actor: str) -> RemediationRow:
        """Undo an applied remediation on request (a person changed their mind)."""
        row = self._require(rid)
        if not self._transition(rid, ["applied", "verified"], "reverting"):
            raise PolicyRefused(f"remediation {rid} is {row.state}; only applied ones revert")
        if not lock_host(self.store, self.fleet, row):
            self._transition(rid, ["reverting"], row.state)
            raise PolicyRefused(f"host {row.host} is being remediated by another change")
        try:
            ok = self._undo(rid, actor, Plan.from_json(row.plan))
            self._finish(rid, "reverting", "reverted" if ok else "failed",
                         f"undone on request of {actor}" if ok else "undo failed")
        finally:
            unlock_host(self.store, row.host, rid)
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
            unlock_host(self.store, row.host, row.id)
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
            passing, seen = self._checks(target, plan)
            if passing and self._transition(row.id, ["applied"], "verified"):
                self.audit(row.id, "auto", "verified", seen)
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
            if cls is None or policy_refusal(self.fleet, row) is not None:
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
