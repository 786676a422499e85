"""dns.records against a real PowerDNS with its HTTP API: a missing DMARC record is found by
mail.dmarc.record, created through the API under `auto`, verified, and removed again by undo."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchtower.config import Fleet
from watchtower.model import Status
from watchtower.probe import registry
from watchtower.probe.sweep import run_sweep
from watchtower.remediation.engine import Remediator
from watchtower.remediation.live_context import default_context
from watchtower.store import Store

ZONE = "fixme.test"


def test_missing_dmarc_is_created_and_undone(powerdns, tmp_path: Path,  # type: ignore[no-untyped-def]
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    powerdns.create_zone(ZONE, [f"ns1.{ZONE}"], [
        ("ns1", "A", 300, "127.0.0.1"),
        ("@", "MX", 300, f"10 mail.{ZONE}."),
        ("mail", "A", 300, "127.0.0.1"),
        ("@", "TXT", 300, '"v=spf1 mx -all"'),
        ("@", "TXT", 300, '"google-site-verification=abc"'),
    ])
    monkeypatch.setenv("WT_PDNS_KEY", powerdns.api_key)
    fleet = Fleet.model_validate({
        "store": {"database": f"sqlite:///{tmp_path / 'wt.db'}"}, "probe": {"nameservers": [f"{powerdns.address}:{powerdns.dns_port}"], "authoritative_port": powerdns.dns_port},
        "mail_domains": [{"name": ZONE}],
        "dns_apis": [{"name": "pdns", "url": powerdns.api_url.removesuffix("/api/v1"),
                      "api_key": {"$env": "WT_PDNS_KEY"}, "zones": [ZONE]}],
        "remediation": {"policies": {"dns.records": "auto"}, "settle_seconds": 0},
    })
    store = Store(fleet.store.database or "")
    dmarc = {"mail.dmarc.record": registry.checks()["mail.dmarc.record"]}
    first = run_sweep(fleet, store, dmarc)
    assert [r.status for r in first.results] == [Status.FAIL]

    remediator = Remediator(fleet, store, default_context(fleet, store))
    (row,) = remediator.run_auto()
    assert row.state == "applied", [a.detail for a in remediator.history(row.id)]
    rrsets = {(r["name"], r["type"]): r for r in powerdns.get_rrsets(ZONE)}
    dmarc_set = rrsets[(f"_dmarc.{ZONE}.", "TXT")]
    assert dmarc_set["records"][0]["content"].startswith('"v=DMARC1; p=reject')
    # the apex TXT set was not touched
    assert len(rrsets[(f"{ZONE}.", "TXT")]["records"]) == 2

    reverted = remediator.revert(row.id or 0, "alice")
    assert reverted.state == "reverted"
    names = {(r["name"], r["type"]) for r in powerdns.get_rrsets(ZONE)}
    assert (f"_dmarc.{ZONE}.", "TXT") not in names
    actions = [a.action for a in remediator.history(row.id)]
    assert {"planned", "undo-recorded", "step 1/1", "verify", "applied", "undo 1/1",
            "reverted"} <= set(actions)
