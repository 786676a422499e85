"""octoDNS calls past their deadline: a plan is abandoned (it changes nothing); a sync is waited
for, because it may be applying and an undo must not race it; syncs of one zone never overlap.

octoDNS's own work is replaced by a function that takes a set time (a provider that stalls), so
the deadline logic of watchtower/net/octodns.py is what is tested."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from watchtower.errors import ProbeTimeout
from watchtower.net import octodns


def _slow(seconds: float, spans: list[tuple[float, float]]) -> Any:
    def fake(config: str, workdir: str, zone: str, target: str, timeout: float,
             doit: bool) -> tuple[int, list[dict[str, Any]]]:
        start = time.monotonic()
        time.sleep(seconds)
        spans.append((start, time.monotonic()))
        return 1, [{"action": "create", "name": f"x.{zone}", "type": "TXT"}]
    return fake


def test_a_plan_past_its_deadline_is_abandoned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(octodns, "_sync", _slow(0.5, []))
    started = time.monotonic()
    with pytest.raises(ProbeTimeout, match=r"did not finish within 0\.1s"):
        octodns.plan("c.yaml", "/w", "a.test.", "pdns", 0.1)
    assert time.monotonic() - started < 0.4


def test_a_late_sync_is_waited_for_and_its_result_kept(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setattr(octodns, "_sync", _slow(0.3, []))
    applied, changes = octodns.sync("c.yaml", "/w", "a.test.", "pdns", 0.2)
    assert applied == 1 and changes[0]["action"] == "create"


def test_a_sync_still_running_is_reported_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(octodns, "_sync", _slow(1.0, []))
    with pytest.raises(ProbeTimeout, match=r"still running after 0\.4s: its changes may yet land"):
        octodns.sync("c.yaml", "/w", "b.test.", "pdns", 0.1)


def test_syncs_of_one_zone_never_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    spans: list[tuple[float, float]] = []
    monkeypatch.setattr(octodns, "_sync", _slow(0.3, spans))
    errors: list[BaseException] = []

    def one() -> None:
        try:
            octodns.sync("c.yaml", "/w", "c.test.", "pdns", 1.0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert not errors and len(spans) == 2
    (_, a1), (b0, _) = sorted(spans)
    assert b0 >= a1, spans
