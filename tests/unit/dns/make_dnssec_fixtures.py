"""Regenerate tests/fixtures/checks/dns.dnssec.valid.json: real signed RRsets, pinned clock.

The chain judgement validates real signatures, so its fixtures cannot be written by hand. This
script signs a parent `test.` and a child `example.test.` with throw-away keys (dnspython, as the
lab does), records the RRsets in the exact shape `dns.dnssec.valid` gathers, and derives one case
per verdict branch. Run: `python -m tests.unit.dns.make_dnssec_fixtures`.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.zone
from cryptography.hazmat.primitives.asymmetric import rsa
from dns.rdtypes.dnskeybase import Flag
from watchtower.checks.dns.common import rrset_facts

from watchtower.lab.dnsserver import LabSigner

OUT = Path(__file__).resolve().parents[2] / "fixtures" / "checks" / "dns.dnssec.valid.json"
SIGNED_AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOW = "2026-06-01T00:00:00+00:00"
AFTER_EXPIRY = "2027-03-01T00:00:00+00:00"

CHILD = """$TTL 3600
@ IN SOA ns1 hostmaster 1 14400 3600 1209600 3600
@ IN NS ns1
ns1 IN A 192.0.2.1
"""


def _parent(ds_lines: list[str], signer: LabSigner) -> dns.zone.Zone:
    text = ("$TTL 3600\n@ IN SOA ns1 hostmaster 1 14400 3600 1209600 3600\n@ IN NS ns1\n"
            "ns1 IN A 192.0.2.53\nexample IN NS ns1.example\n"
            + "".join(f"example IN DS {d}\n" for d in ds_lines))
    zone = dns.zone.from_text(text, origin="test.", relativize=False)
    signer.sign(zone, lifetime=dt.timedelta(days=365), now=SIGNED_AT)
    return zone


def _child(signer: Any = None, rsa_key: Any = None) -> dns.zone.Zone:
    zone = dns.zone.from_text(CHILD, origin="example.test.", relativize=False)
    if rsa_key is not None:
        key = dns.dnssec.make_dnskey(rsa_key.public_key(), dns.dnssec.Algorithm.RSASHA256,
                                     flags=Flag.ZONE | Flag.SEP)
        with zone.writer() as txn:
            dns.dnssec.sign_zone(zone, txn, keys=[(rsa_key, key)], dnskey_ttl=3600,
                                 inception=SIGNED_AT,
                                 expiration=SIGNED_AT + dt.timedelta(days=365))
    elif signer is not None:
        signer.sign(zone, lifetime=dt.timedelta(days=365), now=SIGNED_AT)
    return zone


def _get(zone: dns.zone.Zone, name: str, rdtype: str, covers: str | None = None) -> Any:
    if covers:
        return rrset_facts(zone.get_rrset(name, "RRSIG", covers))
    return rrset_facts(zone.get_rrset(name, rdtype))


def facts(parent: dns.zone.Zone, child: dns.zone.Zone, parent_signer: LabSigner,
          declared: bool = True) -> dict[str, Any]:
    return {
        "zone": "example.test.", "declared": declared, "observed_at": NOW, "anchor_zone": "test.",
        "anchor": [f"test. 3600 IN DNSKEY {parent_signer.dnskey.to_text()}"],
        "links": [
            {"zone": "test.", "source": "192.0.2.53:53",
             "dnskey": _get(parent, "test.", "DNSKEY"),
             "dnskey_rrsig": _get(parent, "test.", "", "DNSKEY")},
            {"zone": "example.test.", "source": "192.0.2.1:53",
             "dnskey": _get(child, "example.test.", "DNSKEY"),
             "dnskey_rrsig": _get(child, "example.test.", "", "DNSKEY"),
             "ds_source": "192.0.2.53:53",
             "ds": _get(parent, "example.test.", "DS"),
             "ds_rrsig": _get(parent, "example.test.", "", "DS")},
        ],
        "soa": _get(child, "example.test.", "SOA"),
        "soa_rrsig": _get(child, "example.test.", "", "SOA"),
    }


def case(name: str, status: str, f: dict[str, Any], contains: str | list[str] = ""
         ) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "status": status, "facts": f}
    if contains:
        out["summary_contains"] = contains
    return out


def build() -> list[dict[str, Any]]:
    p_signer, c_signer, other = LabSigner(), LabSigner(), LabSigner()
    child = _child(c_signer)
    good_parent = _parent([c_signer.ds("example.test.")], p_signer)
    good = facts(good_parent, child, p_signer)
    cases = [case("secure chain from the anchor", "ok", good, "validates from test.")]

    expired = copy.deepcopy(good)
    expired["observed_at"] = AFTER_EXPIRY
    cases.append(case("signatures expired", "fail", expired, ["bogus", "expired"]))

    wrong_ds = facts(_parent([other.ds("example.test.")], p_signer), child, p_signer)
    cases.append(case("DS points at another key", "fail", wrong_ds, "matches its DS"))

    tampered = copy.deepcopy(good)
    tampered["soa"]["rdatas"] = ["ns1.example.test. hostmaster.example.test. 2 14400 3600 "
                                 "1209600 3600"]
    cases.append(case("SOA changed after signing", "fail", tampered, "SOA of example.test."))

    no_ds = facts(_parent([], p_signer), child, p_signer)
    cases.append(case("no DS at the parent, dnssec declared", "fail", no_ds,
                      ["insecure", "no DS"]))
    no_ds_undeclared = facts(_parent([], p_signer), child, p_signer, declared=False)
    cases.append(case("no DS at the parent, dnssec = false", "ok", no_ds_undeclared,
                      "dnssec = false"))

    unsigned = facts(_parent([], p_signer), _child(), p_signer)
    cases.append(case("unsigned zone, dnssec declared", "fail", unsigned, "unsigned"))
    unsigned_ok = facts(_parent([], p_signer), _child(), p_signer, declared=False)
    cases.append(case("unsigned zone, dnssec = false", "ok", unsigned_ok, "not signed"))

    ds_no_key = facts(good_parent, _child(), p_signer)
    cases.append(case("DS at the parent but no DNSKEY", "fail", ds_no_key, "serves no DNSKEY"))

    no_anchor = copy.deepcopy(good)
    no_anchor.update({"anchor_zone": None, "anchor": [], "links": [good["links"][1]]})
    cases.append(case("no trust anchor covers the zone", "fail", no_anchor, "no trust anchor"))

    bad_anchor = copy.deepcopy(good)
    bad_anchor["anchor"] = [f"test. 3600 IN DNSKEY {other.dnskey.to_text()}"]
    cases.append(case("anchor does not match the parent's key", "fail", bad_anchor,
                      "DNSKEY of test."))

    ds_anchor = copy.deepcopy(good)
    ds_anchor["anchor"] = [f"test. 3600 IN DS {p_signer.ds('test.')}"]
    cases.append(case("DS-form trust anchor", "ok", ds_anchor, "validates"))

    sha1 = facts(_parent([c_signer.ds("example.test."),
                          dns.dnssec.make_ds("example.test.", c_signer.dnskey, "SHA1",
                                             policy=dns.dnssec.allow_all_policy).to_text()],
                         p_signer), child, p_signer)
    cases.append(case("SHA-1 DS beside SHA-256", "warn", sha1, "SHA-1"))

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    rsa_child = _child(rsa_key=small)
    rsa_ds = dns.dnssec.make_ds("example.test.",
                                rsa_child.get_rdataset("example.test.", "DNSKEY")[0], "SHA256")
    weak = facts(_parent([rsa_ds.to_text()], p_signer), rsa_child, p_signer)
    cases.append(case("RSA-1024 key", "warn", weak, "RSA-1024"))

    broken = copy.deepcopy(good)
    broken["links"][0] = {"zone": "test.", "error": "no server of test. answered DNSKEY: "
                                                    "192.0.2.53:53: no answer within 3.0s"}
    cases.append(case("parent unreachable", "error", broken, "could not gather"))

    ds_lost = copy.deepcopy(good)
    ds_lost["links"][1].pop("ds")
    ds_lost["links"][1]["ds_error"] = "no server of the parent zone answered DS: timeout"
    cases.append(case("DS question unanswered", "error", ds_lost, "DS of example.test."))
    return cases


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {OUT}")
