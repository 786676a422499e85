"""Facts several checks derive from one observation are gathered once per sweep (`ctx.once`):
the SPF evaluation, an endpoint's handshake, an instance's NodeInfo; with the time observed,
failures not kept, and nothing carried into the next sweep."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from watchtower.checks.mail import spf

from watchtower.config import Fleet
from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.model import Target, TargetKind
from watchtower.net.tls import TlsFacts, TlsProber
from watchtower.probe.clients import SharedFacts, SweepClients


def _fleet() -> Fleet:
    return Fleet.model_validate({"probe": {"nameservers": ["127.0.0.1:9"]}})


def test_one_observation_per_key_however_many_threads_ask() -> None:
    shared = SharedFacts()
    calls: list[int] = []
    gate = threading.Event()

    def compute() -> dict[str, int]:
        gate.wait(2)
        calls.append(1)
        return {"n": len(calls)}

    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(
        shared.observe(("k", 1), compute, time.monotonic() + 5, 5.0))) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert len(calls) == 1 and len(got) == 8
    assert all(o.value is got[0].value and o.at == got[0].at for o in got)
    assert got[0].at.tzinfo is not None  # the observation's start, UTC
    assert shared.observe(("k", 2), lambda: 2, None, 1.0).value == 2
    assert shared.stats == {"hits": 7, "misses": 2}


def test_a_failed_observation_is_made_again() -> None:
    shared = SharedFacts()
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ProbeError("refused", kind="unreachable")
        return "ok"

    with pytest.raises(ProbeError):
        shared.observe(("x",), flaky, None, 1.0)
    assert shared.observe(("x",), flaky, None, 1.0).value == "ok"
    assert len(attempts) == 2


def test_a_waiter_gives_up_at_its_own_deadline() -> None:
    shared = SharedFacts()
    release = threading.Event()
    first = threading.Thread(target=lambda: shared.observe(("slow",), lambda: release.wait(5),
                                                           None, 5.0))
    first.start()
    time.sleep(0.05)
    try:
        with pytest.raises(ProbeTimeout):
            shared.observe(("slow",), lambda: True, time.monotonic() + 0.2, 5.0)
    finally:
        release.set()
        first.join(5)


def test_each_sweep_observes_anew() -> None:
    with SweepClients(_fleet()) as one, SweepClients(_fleet()) as two:
        assert one.context(time.monotonic() + 5).once(("k",), lambda: 1) == 1
        assert two.context(time.monotonic() + 5).once(("k",), lambda: 2) == 2


def test_one_handshake_per_endpoint_and_address(monkeypatch: pytest.MonkeyPatch) -> None:
    handshakes: list[tuple[str, int, str | None]] = []

    def probe(self: TlsProber, host: str, port: int, **kwargs: Any) -> TlsFacts:
        handshakes.append((host, port, kwargs.get("address")))
        return TlsFacts(host, port, kwargs.get("address") or "", "TLSv1.3", None, [], True, None)

    monkeypatch.setattr(TlsProber, "probe", probe)
    with SweepClients(_fleet()) as clients:
        ctx = clients.context(time.monotonic() + 5)
        first = ctx.tls_probe("www.example.test", 443, address="127.0.0.1")
        assert ctx.tls_probe("WWW.example.test", 443, address="127.0.0.1") is first
        ctx.tls_probe("www.example.test", 8443, address="127.0.0.1")
        ctx.tls_probe("www.example.test", 443, address="127.0.0.2")
        ctx.tls_probe("www.example.test", 443, address="127.0.0.1",
                      starttls=lambda sock, t: None)  # a dialogue of its own: never shared
    assert handshakes == [("www.example.test", 443, "127.0.0.1"),
                          ("www.example.test", 8443, "127.0.0.1"),
                          ("www.example.test", 443, "127.0.0.2"),
                          ("www.example.test", 443, "127.0.0.1")]


def test_the_spf_checks_share_one_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluations: list[str] = []

    def evaluate(target: Target, ctx: Any) -> dict[str, Any]:
        evaluations.append(target.name)
        return {"domain": target.name, "problems": [], "effective_all": "-"}

    monkeypatch.setattr(spf, "_evaluate", evaluate)
    target = Target(TargetKind.MAIL_DOMAIN, "example.test", None)
    with SweepClients(_fleet()) as clients:
        lookups = spf.SpfLookups().gather(target, clients.context(time.monotonic() + 5))
        policy = spf.SpfPolicy().gather(target, clients.context(time.monotonic() + 5))
    assert evaluations == ["example.test"]
    lookups["observed_at"] = "2026-01-01T00:00:00+00:00"  # the runner stamps each copy
    assert "observed_at" not in policy


def test_one_botocore_session_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The S3 service model is parsed once per process, not once per S3 client or per sweep
    (a session's first client costs ~250 ms of CPU)."""
    import botocore.session

    from watchtower.net import s3

    made: list[object] = []
    real = botocore.session.get_session

    def get_session() -> object:
        session = real()
        made.append(session)
        return session

    monkeypatch.setattr(s3, "_FACTORY", s3.ClientFactory())  # as in a fresh process
    monkeypatch.setattr(botocore.session, "get_session", get_session)
    with SweepClients(_fleet()) as clients:
        one = clients.s3.client("http://127.0.0.1:9", "garage", "a", "b", deadline=None)
        two = clients.s3.client("http://127.0.0.1:9", "garage", "c", "d", deadline=None)
    with SweepClients(_fleet()) as clients:  # the next sweep
        three = clients.s3.client("http://127.0.0.1:9", "garage", "a", "b", deadline=None)
    assert len(made) == 1 and one.client is not two.client and three.client is not one.client
    assert one.client.meta.events is not two.client.meta.events  # each its own send hook


def test_planning_a_sweep_does_not_load_botocore() -> None:
    """The parent of a sweep's workers imports the checks and the probe seam, never an S3
    client: botocore (~25 MB) stays out of it (watchtower/net/s3.py)."""
    import subprocess
    import sys

    code = ("import sys; from watchtower.probe import registry; import watchtower.probe.sweep; "
            "registry.checks(); print('botocore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
