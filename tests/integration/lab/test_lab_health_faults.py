"""Each queue, federation, storage and backup fault of the lab, switched through the lab's
control API (what `watchtower lab fault DOMAIN FAULT on|off` sends), is seen by its check
running against the lab's own fleet file; switched off, the check is healthy again. The lab:
alpha runs Mastodon and Matrix, bravo PeerTube and Garage, charlie Pixelfed (3 domains)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.web.labnet import run_check, target_of
from watchtower.lab.control import ControlClient
from watchtower.probe import registry


def _target(fleet: Any, kind: str, name: str) -> Any:
    return target_of(fleet, name, kind)


CASES = [
    ("alpha.test", "fedi:queue-behind", "fedi.queues", "mastodon", "social.alpha.test", "fail"),
    ("alpha.test", "fedi:jobs-failing", "fedi.queues", "mastodon", "social.alpha.test", "warn"),
    ("bravo.test", "fedi:jobs-failing", "fedi.queues", "peertube", "video.bravo.test", "warn"),
    ("bravo.test", "fedi:queue-behind", "fedi.queues", "peertube", "video.bravo.test", "fail"),
    ("charlie.test", "fedi:horizon-stopped", "fedi.queues", "pixelfed", "photos.charlie.test",
     "fail"),
    ("alpha.test", "matrix:destinations-failing", "matrix.federation.destinations", "synapse",
     "matrix.alpha.test", "warn"),
    ("alpha.test", "matrix:federation-backlog", "matrix.federation.backlog", "synapse",
     "matrix.alpha.test", "fail"),
    ("bravo.test", "garage:blocks-erroring", "storage.blocks", "garage", "garage.bravo.test",
     "fail"),
    ("bravo.test", "backup:backup-stale", "backup.freshness", "backup",
     "backups.garage.bravo.test", "fail"),
]


@pytest.mark.parametrize(("domain", "fault", "check_id", "kind", "name", "status"), CASES)
def test_fault_is_seen_then_cleared(lab, lab_fleet, domain, fault, check_id, kind, name,  # type: ignore[no-untyped-def]
                                    status) -> None:
    client = ControlClient(lab.dir)
    check = registry.checks()[check_id]
    target = _target(lab_fleet, kind, name)
    # The demo's bravo serves an expired certificate; it would hide the fault under test.
    masking = [f for f in client.faults().get(domain, []) if f.startswith("cert-")]
    for other in masking:
        client.set(domain, other, False)
    try:
        client.set(domain, fault, True)
        try:
            broken = run_check(lab_fleet, check, target, timeout=15)
        finally:
            client.set(domain, fault, False)
        healthy = run_check(lab_fleet, check, target, timeout=15)
    finally:
        for other in masking:
            client.set(domain, other, True)
    assert str(broken.status) == status, (fault, broken.summary)
    assert str(healthy.status) == "ok", (fault, healthy.summary)


def test_missed_heartbeat_fault_stops_the_pings(lab) -> None:  # type: ignore[no-untyped-def]
    """`cron:missed` silences the lab's nightly job: its pinger sends nothing while it is on."""
    client = ControlClient(lab.dir)
    pinger = lab.sites.app(lab.domains[0], "cron")
    client.set("alpha.test", "cron:missed", True)
    try:
        assert pinger.ping_once("http://127.0.0.1:9/ping/x") is False
        assert "missed" in pinger.faults
    finally:
        client.set("alpha.test", "cron:missed", False)
    assert "missed" not in pinger.faults
