"""dns.declared, `watchtower dns plan|export` and the dns.records plan against real PowerDNS.

Two PowerDNS instances (127.0.0.1 and 127.0.0.2, same port) serve one zone as its two name
servers, so the check sees them disagree; a second zone on one server is brought to the
declared state by the remediation through the HTTP API, verified by the check, and undone.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from watchtower.cli import main
from watchtower.config import Fleet
from watchtower.dnsdecl.derive import derive
from watchtower.model import Status
from watchtower.probe import registry
from watchtower.probe.sweep import run_sweep
from watchtower.remediation.engine import Remediator
from watchtower.remediation.live_context import default_context
from watchtower.store import Store

DKIM = "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="


def _fleet(pdns: Any, zone: str, tmp_path: Path, nameservers: list[str]) -> Fleet:
    return Fleet.model_validate({
        "store": {"database": f"sqlite:///{tmp_path / 'wt.db'}"}, "probe": {"nameservers": [f"{pdns.address}:{pdns.dns_port}"], "authoritative_port": pdns.dns_port, "dns_timeout": 2.0},
        "zones": [{"name": zone, "default_addresses": ["192.0.2.10", "2001:db8::10"],
                   "caa": ["letsencrypt.org"], "nameservers": nameservers,
                   "records": [{"name": ns.split(".")[0], "type": "A",
                                "content": f"127.0.0.{i + 1}"}
                               for i, ns in enumerate(nameservers)]}],
        "services": [{"name": f"social.{zone}", "kind": "mastodon",
                      "base_url": f"https://social.{zone}/"}],
        "mail_domains": [{"name": zone, "mx": [f"mail.{zone}"], "dkim_keys": {"s1": DKIM}}],
        "dns_apis": [{"name": "pdns", "url": pdns.api_url.removesuffix("/api/v1"),
                      "api_key": {"$env": "WT_DECL_PDNS_KEY"}, "zones": [zone]}],
        "remediation": {"policies": {"dns.records": "auto"}, "settle_seconds": 0},
    })


def _records(fleet: Fleet) -> list[tuple[str, str, int, str]]:
    return [(r.name, r.type, r.ttl, r.content)
            for r in derive(fleet, fleet.zones[0]).records if r.type != "NS"]


def _check(fleet: Fleet) -> Any:
    outcome = run_sweep(fleet, None, {"dns.declared": registry.checks()["dns.declared"]})
    (result,) = outcome.of("dns.declared")
    return result


@pytest.fixture
def key(powerdns: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WT_DECL_PDNS_KEY", powerdns.api_key)


def test_each_kind_of_difference_and_disagreeing_servers(
        powerdns: Any, powerdns2: Any, tmp_path: Path, key: None) -> None:
    if powerdns2.dns_port != powerdns.dns_port:
        pytest.skip("the second PowerDNS could not share the first one's port")
    zone = "declared-a.test"
    fleet = _fleet(powerdns, zone, tmp_path, [f"ns1.{zone}", f"ns2.{zone}"])
    for server in (powerdns, powerdns2):
        server.create_zone(zone, [f"ns1.{zone}", f"ns2.{zone}"], _records(fleet))
    first = _check(fleet)
    assert first.status == Status.OK, first.summary
    assert len(first.evidence["servers"]) == 2

    powerdns2.delete_rrset(zone, f"_dmarc.{zone}.", "TXT")  # missing on ns2 only
    result = _check(fleet)
    assert result.status == Status.FAIL
    assert "name servers disagree" in result.summary and "ns2" in result.summary
    diffs = result.evidence["differences"]
    assert diffs[f"ns1.{zone}. (127.0.0.1)"] == []
    assert [d["kind"] for d in diffs[f"ns2.{zone}. (127.0.0.2)"]] == ["missing"]

    for server in (powerdns, powerdns2):
        server.replace_rrset(zone, f"_dmarc.{zone}.", "TXT", 3600,
                             ['"v=DMARC1; p=reject; rua=mailto:dmarc-reports@' + zone + '"'])
        server.replace_rrset(zone, f"social.{zone}.", "A", 3600, ["192.0.2.99"])  # different
        server.replace_rrset(zone, f"mail.{zone}.", "AAAA", 3600,
                             ["2001:db8::10", "2001:db8::dead"])  # extra
    result = _check(fleet)
    assert result.status == Status.FAIL
    assert "different social.declared-a.test. A: serves 192.0.2.99" in result.summary
    kinds = {(d["kind"], d["name"], d["type"])
             for d in result.evidence["differences"][f"ns1.{zone}. (127.0.0.1)"]}
    assert kinds == {("different", f"social.{zone}.", "A"),
                     ("extra", f"mail.{zone}.", "AAAA")}

    for server in (powerdns, powerdns2):
        server.replace_rrset(zone, f"social.{zone}.", "A", 3600, ["192.0.2.10"])
    result = _check(fleet)
    assert result.status == Status.WARN and "extra mail.declared-a.test. AAAA" in result.summary


def test_plan_applied_through_the_api_passes_and_undo_restores(
        powerdns: Any, tmp_path: Path, key: None, capsys: pytest.CaptureFixture[str]) -> None:
    zone = "declared-b.test"
    fleet = _fleet(powerdns, zone, tmp_path, [f"ns1.{zone}"])
    records = [r for r in _records(fleet)
               if not (r[0] == f"_smtp._tls.{zone}." or r[1] == "CAA")]  # missing
    records = [(n, t, ttl, '"v=spf1 +all"' if t == "TXT" and c.startswith('"v=spf1') else c)
               for n, t, ttl, c in records]  # different
    records += [(f"www.{zone}.", "A", 300, "192.0.2.1"),            # not managed: untouched
                (f"mail.{zone}.", "CNAME", 300, "mx.example.net."),  # extra, conflicts with A
                (f"{zone}.", "TXT", 300, '"google-site-verification=abc"')]
    records = [r for r in records if not (r[0] == f"mail.{zone}." and r[1] in ("A", "AAAA"))]
    powerdns.create_zone(zone, [f"ns1.{zone}"], records)
    before = sorted((r["name"], r["type"], r["ttl"], tuple(sorted(x["content"]
                    for x in r["records"]))) for r in powerdns.get_rrsets(zone))
    assert _check(fleet).status == Status.FAIL

    config = tmp_path / "fleet.toml"
    import tomli_w

    config.write_text(tomli_w.dumps(fleet.model_dump(by_alias=True, exclude_none=True)))
    assert main(["dns", "plan", "-c", str(config), "--zone", zone, "--offline"]) == 0
    out = capsys.readouterr().out
    assert "+ _smtp._tls.declared-b.test. TXT" in out and '- declared-b.test. TXT "v=spf1 +all"' in out

    store = Store(fleet.store.database or "")
    run_sweep(fleet, store, {"dns.declared": registry.checks()["dns.declared"]})
    remediator = Remediator(fleet, store, default_context(fleet, store))
    (row,) = remediator.run_auto()
    history = [(a.action, a.detail) for a in remediator.history(row.id)]
    assert row.state == "applied", history
    assert sum(1 for a, _ in history if a.startswith("step")) == 1  # one PATCH
    assert _check(fleet).status == Status.OK
    rrsets = {(r["name"], r["type"]): r for r in powerdns.get_rrsets(zone)}
    assert len(rrsets[(f"{zone}.", "TXT")]["records"]) == 2  # the verification token kept
    assert (f"www.{zone}.", "A") in rrsets

    assert remediator.revert(row.id or 0, "alice").state == "reverted"
    after = sorted((r["name"], r["type"], r["ttl"], tuple(sorted(x["content"]
                   for x in r["records"]))) for r in powerdns.get_rrsets(zone))
    strip = lambda rows: [r for r in rows if r[1] != "SOA"]  # noqa: E731 - serial moves
    assert strip(after) == strip(before)


def test_zonefile_export_loads_in_named_checkzone(powerdns: Any, tmp_path: Path,
                                                  key: None) -> None:
    if shutil.which("named-checkzone") is None:
        from tests.servers.base import require

        require("named-checkzone", why="zone file export test (Debian bind9-utils)")
    zone = "declared-c.test"
    fleet = _fleet(powerdns, zone, tmp_path, [f"ns1.{zone}", f"ns2.{zone}"])
    config = tmp_path / "fleet.toml"
    import tomli_w

    config.write_text(tomli_w.dumps(fleet.model_dump(by_alias=True, exclude_none=True)))
    out = tmp_path / "zone.db"
    assert main(["dns", "export", "-c", str(config), "--zone", zone, "--format", "zonefile",
                 "--out", str(out), "--offline"]) == 0
    proc = subprocess.run(["named-checkzone", "-i", "local", zone, str(out)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "loaded serial" in proc.stdout
