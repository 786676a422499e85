"""`mail.dane` through the real stack: PowerDNS signs, Unbound validates, Postfix serves STARTTLS.

The check believes a TLSA RRset only when the fleet's resolver sets the AD bit (RFC 7672 2.2),
so these tests put a validating Unbound between the check and PowerDNS and cover every verdict
branch the catalog names for DNS data (`../shared/docs/check-catalog.md`, mail.dane):

- signed zone, TLSA matching the served chain (3 1 1 leaf key, 2 1 1 issuing CA): ok;
- signed zone, TLSA matching nothing: fail;
- unsigned zone (insecure, no AD) with correct TLSA: fail, senders ignore the records;
- bogus TLSA (its zone re-keyed behind the trust anchor's back; Unbound answers SERVFAIL): the
  probe could not get an answer, so `error`, never a compliance `fail`. The same for a mail
  domain whose own zone is bogus (its MX lookup fails).

Each case is its own zone under `danechk.test`, so no test sees another's cache or records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.servers.base import require, require_module
from tests.servers.mailstack import MailStack
from tests.servers.powerdns import PowerDNS
from tests.servers.unbound import Unbound
from watchtower.config import parse_fleet
from watchtower.model import Result
from watchtower.probe.sweep import run_sweep, select_checks

SUFFIX = "danechk.test"
Records = list[tuple[str, str, int, str]]


def z(label: str) -> str:
    return f"{label}.{SUFFIX}"


def _spki_sha256(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def _first_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def _mail_zone(zone: str, tlsa_name: str, tlsa: Sequence[str], rtype: str = "TLSA") -> Records:
    """A mail domain whose MX is mx.<zone> on loopback, with `tlsa` at its TLSA name."""
    recs: Records = [("@", "MX", 300, f"10 mx.{zone}."), ("mx", "A", 300, "127.0.0.1"),
                     ("ns1", "A", 300, "127.0.0.1")]
    recs += [(f"{tlsa_name}.mx", rtype, 300, content) for content in tlsa]
    return recs


def _create(pdns: PowerDNS, zone: str, records: Records, *, dnssec: bool) -> None:
    pdns.recreate_zone(zone, [f"ns1.{zone}."], records, dnssec=dnssec)


@dataclass
class DaneWorld:
    unbound: Unbound
    stack: MailStack
    ee: str  # "3 1 1 <leaf SPKI>"
    ta: str  # "2 1 1 <issuing CA SPKI>"

    def sweep(self, domain: str) -> Result:
        assert self.stack.mx_port is not None
        fleet = parse_fleet({
            "probe": {"nameservers": [self.unbound.server], "dns_timeout": 3.0, "smtp_port": self.stack.mx_port, "ca_bundle": str(self.stack.ca_pem_path)},
            "mail_domains": [{"name": domain, "dane": True}],
        })
        outcome = run_sweep(fleet, None, select_checks(["mail.dane"]))
        (result,) = [r for r in outcome.results if r.check == "mail.dane"]
        return result


@pytest.fixture(scope="module")
def dane_mx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailStack]:
    """Postfix whose certificate comes from an intermediate CA it sends along with the leaf.

    The session's `mail_stack` sends its leaf alone, and a DANE-TA(2) record can only match a
    certificate the server sends (RFC 7671 5.2.2), so "2 1 1 of the test CA" needs this one.
    """
    require("postfix", "postconf", "dovecot", "/usr/lib/dovecot/imap", "/usr/lib/dovecot/lmtp",
            "opendkim", "opendkim-genkey", "openssl", why="DANE mail stack")
    require_module("trustme", why="DANE mail stack (test CA)")
    import trustme

    issuing = trustme.CA(organization_name="watchtower DANE root").create_child_ca()
    with MailStack(tmp_path_factory.mktemp("dane-mail"), domain=z("ok"),
                   hostname=f"mx.{z('ok')}", ca=issuing, open_relay=False) as stack:
        yield stack


@pytest.fixture(scope="module")
def dane(powerdns: PowerDNS, unbound: Unbound, dane_mx: MailStack) -> DaneWorld:
    """The zones behind Unbound; `rekeyed` re-keyed after its anchor was taken."""
    assert dane_mx.root is not None and dane_mx.mx_port is not None
    tlsa_name = f"_{dane_mx.mx_port}._tcp"
    ee = f"3 1 1 {_spki_sha256(_first_cert(dane_mx.root / 'tls' / 'cert.pem'))}"
    ta = f"2 1 1 {_spki_sha256(_first_cert(dane_mx.ca_pem_path))}"
    wrong = ["3 1 1 " + "00" * 32, "2 1 1 " + "11" * 32]
    signed = {
        z("ok"): _mail_zone(z("ok"), tlsa_name, [ee, ta]),
        z("mismatch"): _mail_zone(z("mismatch"), tlsa_name, wrong),
        # A hosting provider's usual layout: the TLSA name is a CNAME into the provider's
        # zone (RFC 7671 7); here that zone is the bogus one.
        z("tlsa-bogus"): _mail_zone(z("tlsa-bogus"), tlsa_name, [f"tlsa.{z('rekeyed')}."],
                                    rtype="CNAME"),
        z("rekeyed"): [*_mail_zone(z("rekeyed"), tlsa_name, [ee]), ("tlsa", "TLSA", 300, ee)],
    }
    for zone, records in signed.items():
        _create(powerdns, zone, records, dnssec=True)
        unbound.add_powerdns_zone(powerdns, zone, anchored=True)
    _create(powerdns, z("unsigned"), _mail_zone(z("unsigned"), tlsa_name, [ee, ta]),
            dnssec=False)
    unbound.add_powerdns_zone(powerdns, z("unsigned"), anchored=False)
    # A key rollover gone wrong: new keys, while the anchor (the parent's DS in service) still
    # names the old KSK, so every answer from the zone is bogus.
    powerdns.pdnsutil("disable-dnssec", z("rekeyed"))
    powerdns.secure_zone(z("rekeyed"))
    unbound.flush(z("rekeyed"))
    return DaneWorld(unbound, dane_mx, ee, ta)


def _reply(unbound: Unbound, name: str, rdtype: str) -> tuple[str, bool]:
    import dns.flags
    import dns.rcode

    msg = unbound.query(name, rdtype)
    return dns.rcode.to_text(msg.rcode()), bool(msg.flags & dns.flags.AD)


def test_the_resolver_sees_what_each_case_needs(dane: DaneWorld) -> None:
    """The premise of the cases below, straight from Unbound: AD, no AD, SERVFAIL."""
    port = dane.stack.mx_port
    assert _reply(dane.unbound, f"_{port}._tcp.mx.{z('ok')}", "TLSA") == ("NOERROR", True)
    assert _reply(dane.unbound, f"_{port}._tcp.mx.{z('unsigned')}", "TLSA") == ("NOERROR", False)
    assert _reply(dane.unbound, f"_{port}._tcp.mx.{z('tlsa-bogus')}", "TLSA")[0] == "SERVFAIL"
    assert _reply(dane.unbound, f"mx.{z('tlsa-bogus')}", "A") == ("NOERROR", True)
    assert _reply(dane.unbound, z("rekeyed"), "MX")[0] == "SERVFAIL"


def _messages(result: Result) -> str:
    return " | ".join(f"{f.status}: {f.message}" for f in result.findings)


def test_signed_and_matching_is_ok(dane: DaneWorld) -> None:
    result = dane.sweep(z("ok"))
    assert str(result.status) == "ok", (result.summary, _messages(result))
    assert "zone signed" in result.summary
    assert not result.findings, _messages(result)  # no rollover warning: EE and TA both match
    (host,) = result.evidence["hosts"]
    assert host["secure"] is True and host["chain_der"] == "2 certificate(s)"
    assert sorted(host["records"]) == sorted([dane.ee, dane.ta])
    assert _internetnl(result) == {"mail_starttls_dane_exist": "passed",
                                   "mail_starttls_dane_valid": "passed",
                                   "mail_starttls_dane_rollover": "passed"}


def _internetnl(result: Result) -> dict[str, str]:
    return {i: s for c in result.evidence["criteria"] for i, s in c["internetnl"].items()}


def test_either_record_alone_matches(dane: DaneWorld, powerdns: PowerDNS) -> None:
    """DANE-EE and DANE-TA each authenticate the MX on their own (only a rollover warning)."""
    name = f"_{dane.stack.mx_port}._tcp.mx"
    try:
        for record in (dane.ee, dane.ta):
            powerdns.replace_rrset(z("ok"), name, "TLSA", 300, [record])
            dane.unbound.flush(z("ok"))
            result = dane.sweep(z("ok"))
            assert str(result.status) == "warn", (record, result.summary, _messages(result))
            assert "not rollover-safe" in result.summary
            # internet.nl: rollover is an optional test (info); validity still passes
            assert _internetnl(result)["mail_starttls_dane_rollover"] == "info"
            assert _internetnl(result)["mail_starttls_dane_valid"] == "passed"
    finally:
        powerdns.replace_rrset(z("ok"), name, "TLSA", 300, [dane.ee, dane.ta])
        dane.unbound.flush(z("ok"))


def test_signed_but_mismatching_fails(dane: DaneWorld) -> None:
    result = dane.sweep(z("mismatch"))
    assert str(result.status) == "fail", (result.summary, _messages(result))
    assert "no TLSA record matches" in result.summary
    assert "not DNSSEC-validated" not in _messages(result)
    assert _internetnl(result)["mail_starttls_dane_valid"] == "failed"


def test_unsigned_zone_with_correct_tlsa_fails_as_unvalidated(dane: DaneWorld) -> None:
    result = dane.sweep(z("unsigned"))
    assert str(result.status) == "fail", (result.summary, _messages(result))
    assert "not DNSSEC-validated" in result.summary
    # The records themselves match: the only fault is the missing validation.
    assert "no TLSA record matches" not in _messages(result)
    assert _internetnl(result)["mail_starttls_dane_exist"] == "failed"


def test_bogus_tlsa_is_an_error_not_a_fail(dane: DaneWorld) -> None:
    result = dane.sweep(z("tlsa-bogus"))
    assert str(result.status) == "error", (result.summary, _messages(result))
    assert "SERVFAIL" in result.summary


def test_bogus_mail_domain_is_an_error(dane: DaneWorld) -> None:
    result = dane.sweep(z("rekeyed"))
    assert str(result.status) == "error", (result.summary, _messages(result))
    assert "SERVFAIL" in result.summary
