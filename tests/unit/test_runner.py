"""The runner: a hung check is an error for itself alone; a crash is isolated; bounded pool."""

from __future__ import annotations

import threading
import time
from typing import Any

from watchtower.config import Fleet
from watchtower.errors import ProbeError
from watchtower.model import Status, Target, TargetKind, Verdict
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.clients import SweepClients
from watchtower.probe.runner import Job, Runner

RELEASE = threading.Event()


def meta(cid: str) -> CheckMeta:
    return CheckMeta(cid, "test", cid, (TargetKind.ZONE,), timeout=1)


class Quick(Check):
    meta = meta("test.quick")

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        time.sleep(0.05)
        return {"ok": True}

    def judge(self, facts: Facts) -> Verdict:
        return Verdict(Status.OK, "fine")


class Jittery(Check):
    """Quick, with staggered durations: results from several threads arrive as a stream,
    never a pause of 50 ms."""

    meta = meta("test.jittery")

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        time.sleep(0.005 + 0.025 * (hash(target.name) % 97) / 97)
        return {"ok": True}

    def judge(self, facts: Facts) -> Verdict:
        return Verdict(Status.OK, "fine")


class Hangs(Check):
    meta = meta("test.hangs")

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        RELEASE.wait(60)  # ignores its deadline, like a buggy library would
        return {}


class Crashes(Check):
    meta = meta("test.crashes")

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        raise KeyError("boom")


class CannotProbe(Check):
    meta = meta("test.cannot")

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        raise ProbeError("SERVFAIL from 127.0.0.1:53", kind="servfail")


def run(jobs: list[Job], concurrency: int = 4) -> tuple[list[Any], float]:
    sweep = SweepClients(Fleet.model_validate({"probe": {"nameservers": ["127.0.0.1:9"]}}))
    started = time.monotonic()
    results = list(Runner(concurrency).run(jobs, sweep.context))
    return results, time.monotonic() - started


def test_hung_check_does_not_delay_the_others() -> None:
    RELEASE.clear()
    targets = [Target(TargetKind.ZONE, f"z{i}.test") for i in range(20)]
    jobs = [Job(Hangs(), targets[0], 1.0)] + [Job(Quick(), t, 1.0) for t in targets]
    results, elapsed = run(jobs, concurrency=2)
    RELEASE.set()
    by = {(r.check, r.target.name): r for r in results}
    assert len(results) == 21
    hung = by[("test.hangs", "z0.test")]
    assert hung.status is Status.ERROR and "timed out after 1s" in hung.summary
    assert all(r.status is Status.OK for r in results if r.check == "test.quick")
    # 20 quick probes on what is left of 2 workers take ~0.5-1 s; the hung one adds its 1.5 s
    # deadline at most, never 60 s.
    assert elapsed < 3.0


def test_a_hung_check_is_reported_at_its_deadline_while_others_stream_in() -> None:
    """The watchdog also runs while results keep coming: it once ran only when none came for
    50 ms, so a hung probe beside a steady stream was reported last and held its slot."""
    RELEASE.clear()
    targets = [Target(TargetKind.ZONE, f"z{i}.test") for i in range(800)]
    jobs = [Job(Hangs(), targets[0], 0.3)] + [Job(Jittery(), t, 1.0) for t in targets]
    results, elapsed = run(jobs, concurrency=8)
    RELEASE.set()
    order = [r.check for r in results]
    assert len(results) == 801 and "test.hangs" in order
    # 800 probes of 5-30 ms on 7-8 threads stream in for ~2 s; the hung one's deadline plus
    # grace is 0.8 s.
    assert order.index("test.hangs") < 600, (order.index("test.hangs"), elapsed)


def test_crash_and_probe_error_are_isolated() -> None:
    t = Target(TargetKind.ZONE, "a.test")
    results, _ = run([Job(Crashes(), t, 1), Job(CannotProbe(), t, 1), Job(Quick(), t, 1)])
    by = {r.check: r for r in results}
    assert by["test.crashes"].status is Status.ERROR
    assert "KeyError" in by["test.crashes"].summary
    assert by["test.cannot"].status is Status.ERROR
    assert by["test.cannot"].evidence == {"error": "SERVFAIL from 127.0.0.1:53",
                                          "error_kind": "servfail"}
    assert by["test.quick"].status is Status.OK


def test_concurrency_is_bounded() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    class Counting(Quick):
        def gather(self, target: Target, ctx: ProbeContext) -> Facts:
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.02)
            with lock:
                active -= 1
            return {}

    jobs = [Job(Counting(), Target(TargetKind.ZONE, f"z{i}"), 1) for i in range(40)]
    results, _ = run(jobs, concurrency=3)
    assert len(results) == 40 and peak <= 3
