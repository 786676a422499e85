"""Derivation from the fleet file: the lab fleet's records are complete and match the lab's own
zones; each source of a record (services, mail, Matrix, DANE, hand records) is covered."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import dns.zone
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from watchtower.config import Fleet
from watchtower.dnsdecl.compare import compare, queries
from watchtower.dnsdecl.derive import Observed, derive, dkim_record, find_zone
from watchtower.lab.fleet import build_domains, fleet_document, split_txt, zone_text


def _lab(tmp_path: Path, faults: dict[str, set[str]] | None = None
         ) -> tuple[Fleet, list[Any], str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "dkim-s1.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "garage-admin-token").write_text("t\n")
    domains = build_domains(3, faults or {})
    doc = fleet_document(domains, dns_port=5300, https_port=8443, ca_bundle="/dev/null",
                         database="sqlite://", metrics_listen="127.0.0.1:0",
                         secrets_dir=str(tmp_path))
    dkim = split_txt("v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode())
    return Fleet.model_validate(doc), domains, dkim


def _served(text: str, origin: str) -> dict[tuple[str, str], list[str]]:
    zone = dns.zone.from_text(text, origin=origin, relativize=False)
    out: dict[tuple[str, str], list[str]] = {}
    for name, rdataset in zone.iterate_rdatasets():
        key = (name.to_text(), dns.rdatatype.to_text(rdataset.rdtype))
        out[key] = [rd.to_text() for rd in rdataset]
    return out


def _as_served(declared: list[Any], zone_map: dict[tuple[str, str], list[str]]
               ) -> dict[tuple[str, str], list[str]]:
    return {slot: zone_map.get(slot, []) for slot in queries(declared)}


def test_lab_declared_set_is_complete_and_matches_the_lab_zone(tmp_path: Path) -> None:
    fleet, domains, dkim = _lab(tmp_path)
    alpha = domains[0]
    decl = derive(fleet, find_zone(fleet, "alpha.test") or fleet.zones[0])
    assert not decl.problems and not decl.unlocated
    slots = {(r.name, r.type) for r in decl.records}
    z = "alpha.test."
    expected = {(z, t) for t in ("A", "AAAA", "MX", "TXT", "CAA", "NS")}
    for host in ("social", "matrix", "mail", "mta-sts", "ns1", "ns2"):
        expected |= {(f"{host}.{z}", "A"), (f"{host}.{z}", "AAAA")}
    expected |= {(f"{p}.{z}", "TXT") for p in ("_dmarc", "_mta-sts", "_smtp._tls",
                                             "s1._domainkey")}
    assert slots == expected
    served = _as_served(decl.records, _served(zone_text(alpha, dkim, 2026112501), z))
    assert compare(decl.records, served) == []


def test_each_zone_gets_only_its_own_names(tmp_path: Path) -> None:
    fleet, _, _ = _lab(tmp_path)
    for zone in fleet.zones:
        decl = derive(fleet, zone)
        assert all(r.name.endswith(zone.name + ".") for r in decl.records)
    garage = derive(fleet, fleet.zones[1]).records
    assert any(r.name == "garage.bravo.test." for r in garage)


def test_lab_faults_show_up_as_differences(tmp_path: Path) -> None:
    fleet, domains, dkim = _lab(tmp_path, {"alpha.test": {"no-caa", "spf-plus-all",
                                                          "no-dmarc", "no-ipv6"}})
    decl = derive(fleet, fleet.zones[0])
    served = _as_served(decl.records, _served(zone_text(domains[0], dkim, 1), "alpha.test."))
    kinds = {(d.kind, d.name, d.type) for d in compare(decl.records, served)}
    assert ("missing", "alpha.test.", "CAA") in kinds
    assert ("different", "alpha.test.", "TXT") in kinds
    assert ("missing", "_dmarc.alpha.test.", "TXT") in kinds
    assert ("missing", "social.alpha.test.", "AAAA") in kinds


def _fleet(**extra: Any) -> Fleet:
    doc: dict[str, Any] = {
        "zones": [{"name": "example.test", "default_addresses": ["192.0.2.10"],
                   "caa": ["letsencrypt.org"]}],
        "hosts": [{"name": "web1", "addresses": ["192.0.2.1", "2001:db8::1"]}],
        "services": [{"name": "m", "kind": "synapse", "base_url": "https://matrix.example.test/",
                      "server_name": "example.test", "matrix_delegation": "srv",
                      "host": "web1"},
                     {"name": "p", "kind": "peertube", "base_url": "https://v.example.test/",
                      "cname": "web1.example.net"}],
        "mail_hosts": [{"name": "mx1", "host": "mx.example.test", "addresses": ["192.0.2.25"]}],
        "mail_domains": [{"name": "example.test", "mail_host": "mx1", "dane": True},
                         {"name": "parked.example.test", "sending": False}],
    }
    doc.update(extra)
    return Fleet.model_validate(doc)


def test_sources_of_records() -> None:
    fleet = _fleet()
    observed = Observed(tlsa={"mx.example.test.": ["3 1 1 " + "ab" * 32]})
    recs = {(r.name, r.type, r.content) for r in derive(fleet, fleet.zones[0], observed).records}
    z = "example.test."
    assert ("matrix." + z, "A", "192.0.2.1") in recs and ("matrix." + z, "AAAA",
                                                           "2001:db8::1") in recs
    assert ("_matrix-fed._tcp." + z, "SRV", "10 0 443 matrix.example.test.") in recs
    assert ("v." + z, "CNAME", "web1.example.net.") in recs
    assert (z, "MX", "10 mx.example.test.") in recs
    assert ("mx." + z, "A", "192.0.2.25") in recs
    assert ("_25._tcp.mx." + z, "TLSA", "3 1 1 " + "ab" * 32) in recs
    assert (z, "CAA", '0 issue "letsencrypt.org"') in recs
    assert ("parked." + z, "MX", "0 .") in recs
    assert ("parked." + z, "TXT", '"v=spf1 -all"') in recs
    assert not any(r[0] == "_mta-sts.parked." + z for r in recs)


def test_dane_without_a_certificate_is_unlocated_not_guessed() -> None:
    fleet = _fleet()
    decl = derive(fleet, fleet.zones[0])
    assert not any(r.type == "TLSA" for r in decl.records)
    assert any("TLSA" in u for u in decl.unlocated)


def test_hand_records_replace_derived_ones_of_the_same_kind() -> None:
    fleet = _fleet(zones=[{"name": "example.test", "caa": ["letsencrypt.org"], "records": [
        {"name": "@", "type": "TXT", "content": "v=spf1 ip4:192.0.2.0/24 -all"},
        {"name": "@", "type": "TXT", "content": "google-site-verification=abc"},
        {"name": "www", "type": "A", "content": "192.0.2.80", "ttl": 300}]}])
    recs = derive(fleet, fleet.zones[0]).records
    apex_txt = sorted(r.content for r in recs if r.name == "example.test." and r.type == "TXT")
    assert apex_txt == ['"google-site-verification=abc"', '"v=spf1 ip4:192.0.2.0/24 -all"']
    www = [r for r in recs if r.name == "www.example.test."]
    assert [(r.type, r.content, r.ttl) for r in www] == [("A", "192.0.2.80", 300)]


def test_unlocated_hosts_are_listed() -> None:
    fleet = Fleet.model_validate({
        "zones": [{"name": "example.test"}],
        "services": [{"name": "s", "kind": "mastodon", "base_url": "https://s.example.test/"}]})
    decl = derive(fleet, fleet.zones[0])
    assert any(u.startswith("s.example.test.") for u in decl.unlocated)


def test_dkim_key_forms(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spki = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    b64 = base64.b64encode(spki).decode()
    assert dkim_record(b64) == f"v=DKIM1; k=rsa; p={b64}"
    private = tmp_path / "s1.private"
    private.write_bytes(rsa_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.TraditionalOpenSSL,
                                              serialization.NoEncryption()))
    from watchtower.config import Secret

    assert dkim_record(Secret.model_validate({"$file": str(private)})) == \
        f"v=DKIM1; k=rsa; p={b64}"
    genkey = tmp_path / "s1.txt"  # what opendkim-genkey writes
    genkey.write_text(f's1._domainkey\tIN\tTXT\t( "v=DKIM1; h=sha256; k=rsa; "\n\t  '
                      f'"p={b64[:200]}"\n\t  "{b64[200:]}" )  ; ----- DKIM key s1\n')
    assert dkim_record(Secret.model_validate({"$file": str(genkey)})) == \
        f"v=DKIM1; k=rsa; p={b64}"
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = base64.b64encode(ed.public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)).decode()
    assert dkim_record(raw) == f"v=DKIM1; k=ed25519; p={raw}"
    with pytest.raises(ValueError):
        dkim_record("not a key!")
