"""The API plan (changes and exact undo) and the octoDNS export, loaded by octoDNS itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchtower.config import Fleet
from watchtower.dnsdecl.derive import Observed, derive
from watchtower.dnsdecl.export import to_octodns, to_zonefile
from watchtower.dnsdecl.plan import plan_zone
from watchtower.dnsdecl.records import Record

Z = "example.test."
DECLARED = [
    Record(Z, "TXT", '"v=spf1 mx -all"', 3600),
    Record(Z, "MX", f"10 mail.{Z}", 3600),
    Record(f"_mta-sts.{Z}", "TXT", '"v=STSv1; id=1"', 3600, flexible="mta-sts-id"),
    Record(f"www.{Z}", "A", "192.0.2.1", 300),
]


def _rr(name: str, rtype: str, ttl: int, *contents: str, disabled: bool = False) -> dict:
    return {"name": name, "type": rtype, "ttl": ttl,
            "records": [{"content": c, "disabled": disabled} for c in contents]}


def test_plan_replaces_what_differs_and_undoes_exactly() -> None:
    rrsets = [
        _rr(Z, "TXT", 60, '"v=spf1 +all"', '"google-site-verification=abc"'),
        _rr(Z, "MX", 3600, f"10 mail.{Z}"),
        _rr(f"_mta-sts.{Z}", "TXT", 3600, '"v=STSv1; id=20240101"'),
        _rr(f"www.{Z}", "AAAA", 600, "2001:db8::9"),
    ]
    plan = plan_zone(Z, DECLARED, rrsets)
    changes = {(c["name"], c["type"]): c for c in plan.changes}
    assert set(changes) == {(Z, "TXT"), (f"www.{Z}", "A"), (f"www.{Z}", "AAAA")}
    assert plan.changes[0]["changetype"] == "DELETE"  # deletions first
    txt = [r["content"] for r in changes[(Z, "TXT")]["records"]]
    assert txt == ['"v=spf1 mx -all"', '"google-site-verification=abc"']
    assert changes[(f"www.{Z}", "A")]["ttl"] == 300
    undo = {(c["name"], c["type"]): c for c in plan.undo}
    assert undo[(Z, "TXT")]["ttl"] == 60 and len(undo[(Z, "TXT")]["records"]) == 2
    assert undo[(f"www.{Z}", "A")]["changetype"] == "DELETE"
    assert undo[(f"www.{Z}", "AAAA")]["records"][0]["content"] == "2001:db8::9"
    assert "- example.test. TXT \"v=spf1 +all\"" in plan.diff_lines


def test_plan_is_empty_in_the_declared_state() -> None:
    rrsets = [_rr(Z, "TXT", 3600, '"v=spf1 mx -all"'), _rr(Z, "MX", 3600, f"10 mail.{Z}"),
              _rr(f"_mta-sts.{Z}", "TXT", 3600, '"v=STSv1; id=77"'),
              _rr(f"www.{Z}", "A", 300, "192.0.2.1")]
    assert plan_zone(Z, DECLARED, rrsets).empty


def test_disabled_records_are_not_served_but_restored_by_undo() -> None:
    rrsets = [_rr(f"www.{Z}", "A", 300, "192.0.2.1", disabled=True)]
    plan = plan_zone(Z, DECLARED, rrsets)
    undo = next(u for u in plan.undo if u["name"] == f"www.{Z}")
    assert undo["records"] == [{"content": "192.0.2.1", "disabled": True}]


def _fleet() -> Fleet:
    return Fleet.model_validate({
        "zones": [{"name": "example.test", "default_addresses": ["192.0.2.10", "2001:db8::10"],
                   "caa": ["letsencrypt.org"], "nameservers": ["ns1.example.net"]}],
        "services": [{"name": "m", "kind": "synapse", "base_url": "https://matrix.example.test/",
                      "server_name": "example.test", "matrix_delegation": "both"}],
        "mail_domains": [{"name": "example.test", "mx": ["mail.example.test"], "dane": True,
                          "dkim_keys": {"s1": "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="}}],
    })


def test_octodns_loads_the_export(tmp_path: Path) -> None:
    octodns_yaml = pytest.importorskip("octodns.provider.yaml")
    from octodns.zone import Zone as OctoZone

    fleet = _fleet()
    observed = Observed(tlsa={"mail.example.test.": ["3 1 1 " + "cd" * 32]})
    records = derive(fleet, fleet.zones[0], observed).records
    (tmp_path / "example.test.yaml").write_text(to_octodns(fleet.zones[0], records))
    provider = octodns_yaml.YamlProvider("declared", str(tmp_path), supports_root_ns=True)
    zone = OctoZone("example.test.", [])
    provider.populate(zone)
    loaded = {(r.name, r._type) for r in zone.records}
    assert loaded == {(r.name.removesuffix("example.test.").rstrip("."), r.type)
                      for r in records}
    spf = next(r for r in zone.records if r.name == "" and r._type == "TXT")
    assert spf.values == ["v=spf1 mx -all"]


def test_zonefile_has_soa_ns_and_every_record() -> None:
    fleet = _fleet()
    records = derive(fleet, fleet.zones[0]).records
    text = to_zonefile(fleet.zones[0], records, serial=7)
    import dns.zone

    zone = dns.zone.from_text(text, origin="example.test.", relativize=False)
    assert zone.get_rdataset("example.test.", "SOA") is not None
    assert zone.get_rdataset("example.test.", "NS") is not None
    assert sum(len(rds) for _, rds in zone.iterate_rdatasets()) == len(records) + 1
