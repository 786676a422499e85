"""The remediation engine: policy, approval, locks, rate limits, verify, undo, recovery.

A test remediation records what it would run; the store is real (SQLite) and so are the
compare-and-set state changes and host locks.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlmodel import Session

from watchtower.config import Fleet
from watchtower.model import Result, Status, Target, TargetKind, utcnow
from watchtower.probe.registry import register_remediation
from watchtower.remediation.api import (
    NoAction,
    Plan,
    Remediation,
    RemediationContext,
    RemediationMeta,
    Step,
    StepOutcome,
)
from watchtower.remediation.engine import Remediator
from watchtower.remediation.policy import PolicyRefused
from watchtower.store import HostLockRow, RemediationRow, StateRow, Store

CHECK = "test.engine-check"


@register_remediation
class FixIt(Remediation):
    meta = RemediationMeta("test.fix-it", "Fix it", (CHECK,), settle_seconds=0,
                           max_per_hour=3, cooldown_seconds=0)

    def plan(self, state: StateRow, ctx: RemediationContext) -> Plan | NoAction:
        if state.target == "nothing-to-do":
            return NoAction("already fine")
        guard = "crosses a migration" if state.target == "guarded.test" else None
        return Plan(self.meta.id, state.target, f"host-of-{state.target}", "switch to gen 3",
                    "- gen 4\n+ gen 3",
                    [Step("switch", "command", host=f"host-of-{state.target}",
                          argv=["switch", "3"])],
                    [Step("switch back", "command", host=f"host-of-{state.target}",
                          argv=["switch", "4"])],
                    [CHECK], guard=guard)


SLOW_CHECK = "test.engine-slow-check"


@register_remediation
class SlowFix(FixIt):
    meta = RemediationMeta("test.slow-fix", "Fix it slowly", (SLOW_CHECK,), settle_seconds=0,
                           max_per_hour=3, cooldown_seconds=600)


class Harness:
    def __init__(self, tmp: Path, policies: dict[str, str], per_hour: int = 3) -> None:
        self.store = Store(f"sqlite:///{tmp / 'wt.db'}")
        self.commands: list[tuple[str, list[str]]] = []
        self.failing_steps: set[str] = set()
        self.verify_status = Status.OK
        self.fleet = Fleet.model_validate({
            "zones": [{"name": n} for n in ("a.test", "b.test", "guarded.test")],
            "remediation": {"policies": policies, "max_per_host_per_hour": per_hour},
        })
        ctx = RemediationContext(self.fleet, self.store, self.run_command, self.call_http,
                                 self.verify)
        self.engine = Remediator(self.fleet, self.store, ctx)
        self.engine.sleep = lambda _s: None

    def run_command(self, host: str, argv: list[str], timeout: float) -> StepOutcome:
        self.commands.append((host, argv))
        return StepOutcome(" ".join(argv) not in self.failing_steps, "done")

    def call_http(self, step: Step) -> StepOutcome:
        return StepOutcome(True, "")

    def verify(self, target: Target, checks: list[str]) -> list[Status]:
        return [self.verify_status]

    def fail(self, target: str) -> None:
        self.store.record([Result(CHECK, "test", Target(TargetKind.ZONE, target), Status.FAIL,
                                  "broken", {}, 1.0, utcnow())])

    def set_policy(self, key: str, value: str) -> None:
        self.fleet.remediation.policies[key] = value  # type: ignore[index]


def test_policy_off_stores_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "off"})
    h.fail("a.test")
    assert h.engine.propose() == []


def test_dry_run_is_shown_never_applied(tmp_path: Path) -> None:
    h = Harness(tmp_path, {})  # dry-run is the default
    h.fail("a.test")
    (row,) = h.engine.propose()
    assert row.state == "dry_run"
    with pytest.raises(PolicyRefused):
        h.engine.apply(row.id or 0, "mallory")
    assert h.commands == []


def test_approve_waits_for_a_person_then_applies_and_verifies(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "approve"})
    h.fail("a.test")
    (row,) = h.engine.propose()
    rid = row.id or 0
    assert row.state == "awaiting_approval"
    with pytest.raises(PolicyRefused):
        h.engine.apply(rid, "alice")  # not approved yet
    assert h.engine.propose() == []  # one open proposal per fix and target
    h.engine.approve(rid, "alice")
    final = h.engine.apply(rid, "alice")
    assert final.state == "applied" and final.approved_by == "alice"
    assert h.commands == [("host-of-a.test", ["switch", "3"])]
    actions = [(a.actor, a.action) for a in h.engine.history(rid)]
    assert actions[:3] == [("auto", "planned"), ("alice", "approved"), ("alice", "undo-recorded")]
    assert ("alice", "step 1/1") in actions and ("auto", "applied") in actions


def test_auto_applies_on_its_own(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "auto"})
    h.fail("a.test")
    (row,) = h.engine.run_auto()
    assert row.state == "applied" and row.applied_by == "auto"


def test_failed_verification_is_undone_and_reported_as_rolled_back(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "auto"})
    h.verify_status = Status.FAIL
    h.fail("a.test")
    (row,) = h.engine.run_auto()
    assert row.state == "rolled_back" and "undone" in row.outcome
    assert [argv for _, argv in h.commands] == [["switch", "3"], ["switch", "4"]]


def test_failed_step_is_undone(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "auto"})
    h.failing_steps.add("switch 3")
    h.fail("a.test")
    (row,) = h.engine.run_auto()
    assert row.state == "failed" and [a for _, a in h.commands][-1] == ["switch", "4"]


def test_guard_refuses_unless_forced(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "approve"})
    h.fail("guarded.test")
    (row,) = h.engine.propose()
    h.engine.approve(row.id or 0, "alice")
    with pytest.raises(PolicyRefused, match="crosses a migration"):
        h.engine.apply(row.id or 0, "alice")
    assert h.engine.apply(row.id or 0, "alice", force=True).state == "applied"


def test_policy_tightened_after_approval_is_honoured(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "approve"})
    h.fail("a.test")
    (row,) = h.engine.propose()
    h.engine.approve(row.id or 0, "alice")
    h.set_policy("test.fix-it@a.test", "dry-run")  # a reload narrowed the policy
    with pytest.raises(PolicyRefused, match="dry-run"):
        h.engine.apply(row.id or 0, "alice")
    assert h.commands == []


def test_host_lock_blocks_a_second_change_and_expires(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "auto"})
    h.fail("a.test")
    (row,) = h.engine.propose()
    with Session(h.store.engine) as s:
        s.add(HostLockRow(host="host-of-a.test", remediation_id=999, holder="other:1",
                          acquired_at=utcnow(), expires_at=utcnow() + dt.timedelta(minutes=5)))
        s.commit()
    with pytest.raises(PolicyRefused, match="being remediated"):
        h.engine.apply(row.id or 0, "auto")
    with Session(h.store.engine) as s:
        lock = s.get(HostLockRow, "host-of-a.test")
        assert lock is not None
        lock.expires_at = utcnow() - dt.timedelta(seconds=1)
        s.add(lock)
        s.commit()
    assert h.engine.apply(row.id or 0, "auto").state == "applied"


def test_rate_limit_per_host(tmp_path: Path) -> None:
    """Two changes an hour on a host: the third failure is not planned, and says why."""
    h = Harness(tmp_path, {"test.fix-it": "auto"}, per_hour=2)
    applied = 0
    for _ in range(2):
        h.fail("a.test")
        rows = h.engine.run_auto()
        applied += sum(1 for r in rows if r.state == "applied")
        h.store.record([Result(CHECK, "test", Target(TargetKind.ZONE, "a.test"), Status.OK,
                               "fine", {}, 1.0, utcnow())])
    assert applied == 2
    h.fail("a.test")
    third = h.engine.plan_all()
    assert third.created == [] and h.engine.run_auto() == []
    (why,) = third.not_planned
    assert why.text() == ("test.fix-it could fix test.engine-check on a.test, but 2 change(s) "
                          "were made on host-of-a.test in the last hour (the limit is 2, "
                          "[remediation] max_per_host_per_hour)")


def test_an_approved_plan_meeting_the_limit_is_refused_and_audited(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "approve"}, per_hour=1)
    h.fail("a.test")
    (row,) = h.engine.propose()
    h.engine.approve(row.id or 0, "alice")
    with Session(h.store.engine) as s:  # another change on the host since the plan was made
        s.add(RemediationRow(remediation="other", target="a.test", host="host-of-a.test",
                             trigger_checks="[]", policy="auto", state="applied", summary="",
                             plan="{}", created_at=utcnow(), updated_at=utcnow(),
                             finished_at=utcnow()))
        s.commit()
    assert h.engine.apply_approved() == []  # waits, quietly
    assert not [a for a in h.engine.history(row.id) if a.action == "rate-limited"]
    with pytest.raises(PolicyRefused, match="rate limit: 1 change"):
        h.engine.apply(row.id or 0, "alice")
    assert [a.action for a in h.engine.history(row.id)][-1] == "rate-limited"
    assert h.commands == []


def test_a_fix_in_its_cooldown_is_not_planned(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.slow-fix": "auto"})
    h.store.record([Result(SLOW_CHECK, "test", Target(TargetKind.ZONE, "a.test"),
                           Status.FAIL, "broken", {}, 1.0, utcnow())])
    (row,) = h.engine.run_auto()
    assert row.state == "applied"
    again = h.engine.plan_all()
    assert again.created == []
    (why,) = again.not_planned
    assert why.reason.startswith(f"test.slow-fix changed a.test 0 s ago (#{row.id}, applied); "
                                 "its cooldown is 600 s")


def test_every_fix_not_planned_says_why(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "approve", "test.fix-it@b.test": "off"})
    for target in ("a.test", "b.test", "nothing-to-do"):
        h.fail(target)
    h.store.record([Result("test.no-fix-known", "test", Target(TargetKind.ZONE, "a.test"),
                           Status.FAIL, "x", {}, 1.0, utcnow())])
    first = h.engine.plan_all()
    (row,) = first.created
    reasons = {n.target: n.reason for n in first.not_planned}
    assert reasons == {"b.test": "its policy is off for b.test ([remediation] policies)",
                       "nothing-to-do": "already fine"}
    assert [u.check_id for u in first.unfixable] == ["test.no-fix-known"]
    second = h.engine.plan_all()
    assert {n.target: n.reason for n in second.not_planned}["a.test"] == (
        f"plan #{row.id} for a.test is still awaiting_approval (one open plan per fix and "
        "target)")


def test_plans_a_person_approved_are_applied_by_the_engine(tmp_path: Path) -> None:
    """What `watchtower run` does after an approval in the dashboard: approve-policy plans
    approved by a person run; plans waiting for approval and dry-run plans do not."""
    h = Harness(tmp_path, {"test.fix-it": "approve", "test.fix-it@b.test": "dry-run"})
    for target in ("a.test", "b.test", "guarded.test"):
        h.fail(target)
    rows = {r.target: r for r in h.engine.propose()}
    assert h.engine.apply_approved() == []
    h.engine.approve(rows["a.test"].id or 0, "olga")
    (done,) = h.engine.apply_approved()
    assert (done.target, done.state, done.applied_by) == ("a.test", "applied", "auto")
    assert {r.target: r.state for r in h.engine.proposals()} == {
        "a.test": "applied", "b.test": "dry_run", "guarded.test": "awaiting_approval"}


def test_concurrent_apply_runs_the_steps_once(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "approve"})
    h.fail("a.test")
    (row,) = h.engine.propose()
    h.engine.approve(row.id or 0, "alice")
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            outcomes.append(h.engine.apply(row.id or 0, "alice").state)
        except PolicyRefused as exc:
            outcomes.append(f"refused: {exc}")

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("applied") == 1
    assert [argv for _, argv in h.commands] == [["switch", "3"]]


def test_interrupted_apply_is_resolved_never_reapplied(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "auto"})
    h.fail("a.test")
    h.fail("b.test")
    rows = h.engine.propose()
    for row in rows:  # as if the process died mid-apply
        h.engine._transition(row.id or 0, ["approved"], "applying")
    h.verify_status = Status.OK
    first = h.engine.recover()
    assert len(first) == 2
    assert {r.state for r in h.engine.proposals()} == {"applied"}
    assert h.commands == []  # verified as it stands, nothing re-run
    assert h.engine.recover() == []


def test_no_action_is_not_stored(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "auto"})
    h.store.record([Result(CHECK, "test", Target(TargetKind.ZONE, "nothing-to-do"),
                           Status.FAIL, "x", {}, 1.0, utcnow())])
    assert h.engine.propose() == []


def test_a_plan_changed_in_the_database_never_runs(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"test.fix-it": "approve"})
    h.fail("a.test")
    (row,) = h.engine.propose()
    h.engine.approve(row.id or 0, "alice")
    with Session(h.store.engine) as s:
        stored = s.get(RemediationRow, row.id)
        assert stored is not None
        stored.plan = stored.plan.replace('"3"', '"666"')
        s.add(stored)
        s.commit()
    with pytest.raises(PolicyRefused, match="signature"):
        h.engine.apply(row.id or 0, "alice")
    assert h.commands == []
