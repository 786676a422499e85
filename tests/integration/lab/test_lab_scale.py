"""The lab at 100 domains: faults switched through the control channel flip the right checks.

Each fault goes through the real path a person or a benchmark uses: the control API over HTTP
(the `watchtower lab fault` client class), then a real sweep through the lab's own DNS and web
servers, stored, so the flip is the store's verdict and not a test's comparison.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchtower.config import load_fleet
from watchtower.lab import Lab
from watchtower.lab.control import ControlClient, ControlError
from watchtower.lab.faults import random_faults
from watchtower.lab.fleet import build_domains
from watchtower.model import Status
from watchtower.probe import registry
from watchtower.probe.sweep import run_sweep, select_checks
from watchtower.store import Store

DOMAINS = 100
#: (domain, fault, check id, target of that check): one of each kind of switch.
CASES = [
    ("d0010.test", "no-dmarc", "mail.dmarc.record", "d0010.test"),  # a zone re-rendered
    ("d0011.test", "single-ns", "dns.ns.count", "d0011.test"),  # the parent re-signed too
    ("d0012.test", "cert-expired", "web.tls.certificate", "social.d0012.test:{port}"),  # new cert
    ("d0013.test", "fedi:nodeinfo-schema-error", "fedi.nodeinfo", "video.d0013.test"),  # app
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    plan = random_faults(build_domains(DOMAINS, {}), 0.1, seed=7)
    for domain, *_ in CASES:
        plan.pop(domain, None)
    lab = Lab(tmp_path_factory.mktemp("lab-scale"), domains=DOMAINS, faults=plan,
              metrics_listen="127.0.0.1:0")
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


def _statuses(lab: Lab, store: Store, check_ids: list[str], targets: set[str]
              ) -> dict[tuple[str, str], tuple[Status, bool]]:
    fleet = load_fleet(lab.fleet_path, registry.check_ids_and_families())
    wanted = [t for t in fleet.targets() if t.name in targets]
    checks = {cid: c for cid, c in select_checks().items() if cid in check_ids}
    outcome = run_sweep(fleet, store, checks, targets=wanted)
    flipped = {(f.check, f.target) for f in outcome.flips if f.old is not None}
    return {(r.check, r.target.name): (r.status, (r.check, r.target.name) in flipped)
            for r in outcome.results}


def test_control_channel_flips_checks_and_back(lab: Lab, tmp_path: Path) -> None:
    port = lab.web.https_port
    cases = [(d, f, c, t.format(port=port)) for d, f, c, t in CASES]
    check_ids = [c for *_, c, _ in cases]
    targets = {t for *_, t in cases}
    store = Store(f"sqlite:///{tmp_path / 'scale.db'}")
    client = ControlClient(lab.dir)

    before = _statuses(lab, store, check_ids, targets)
    for _, fault, check, target in cases:
        assert before[(check, target)][0] == Status.OK, (fault, before[(check, target)])

    for domain, fault, *_ in cases:
        assert fault in client.set(domain, fault, True)
    assert {d for d, *_ in cases} <= set(client.faults())
    during = _statuses(lab, store, check_ids, targets)
    for _, fault, check, target in cases:
        assert during[(check, target)] == (Status.FAIL, True), (fault, check)

    for domain, fault, *_ in cases:
        assert fault not in client.set(domain, fault, False)
    after = _statuses(lab, store, check_ids, targets)
    for _, fault, check, target in cases:
        assert after[(check, target)] == (Status.OK, True), (fault, check)
    # Other checks of the same targets were never touched by the switches.
    others = _statuses(lab, store, ["dns.soa.timers", "mail.spf.policy"], {"d0010.test"})
    assert {s for s, _ in others.values()} == {Status.OK}


def test_control_channel_refuses_what_does_not_apply(lab: Lab) -> None:
    client = ControlClient(lab.dir)
    with pytest.raises(ControlError, match=r"unknown lab domain 'nowhere.test' \(the lab's "
                       r"\d+ domains are d0000.test \.\.\. d\d+.test\)"):
        client.set("nowhere.test", "no-dmarc", True)
    with pytest.raises(ControlError, match="unknown lab fault") as unknown:
        client.set("d0001.test", "no-such-fault", True)
    assert "no-dmarc" in unknown.value.choices  # the faults that would have done
    with pytest.raises(ControlError, match="did you mean no-dmarc"):
        client.set("d0001.test", "no-dmarcc", True)
    with pytest.raises(ControlError, match="does not apply") as wrong:
        client.set("d0001.test", "matrix:keys-expired", True)  # d0001 runs no Matrix
    assert wrong.value.choices and not any(c.startswith("matrix")
                                           for c in wrong.value.choices)


def test_cli_lists_the_valid_faults_of_the_domain(lab: Lab) -> None:
    proc = subprocess.run([sys.executable, "-m", "watchtower.cli", "lab", "fault", "d0001.test",
                           "nosuchfault", "on", "--dir", str(lab.dir)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 1
    first, *listed = proc.stderr.splitlines()
    assert first == ("error: unknown lab fault 'nosuchfault'; the faults of d0001.test:")
    names = {n.strip() for line in listed for n in line.split(",") if n.strip()}
    assert {"no-dmarc", "cert-expired", "site:no-hsts"} <= names
    assert all(len(line) <= 100 for line in listed)


def test_cli_client_switches_and_lists(lab: Lab) -> None:
    cli = [sys.executable, "-m", "watchtower.cli", "lab"]
    on = subprocess.run([*cli, "fault", "d0020.test", "fedi:version-lag", "on", "--dir",
                         str(lab.dir)], capture_output=True, text=True, timeout=60, check=False)
    assert on.returncode == 0, on.stderr
    listed = subprocess.run([*cli, "faults", "--dir", str(lab.dir)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert "d0020.test: fedi:version-lag" in listed.stdout
    off = subprocess.run([*cli, "fault", "d0020.test", "fedi:version-lag", "off", "--dir",
                          str(lab.dir)], capture_output=True, text=True, timeout=60, check=False)
    assert off.returncode == 0 and "no faults" in off.stdout
    assert json.loads((lab.dir / "control.json").read_text())["url"].startswith("http://127.")
