"""Real servers for the mail checks: the fixture zones in PowerDNS, the MTA-STS policies on an
HTTPS front under a test CA, and helpers that build a fleet pointing at them.

Zones are created once per session on the shared `powerdns` fixture, under names no other test
uses (`*.mailchk.test`), so the mail tests and the checkdmarc oracle read the same data.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.servers.powerdns import PowerDNS, txt
from watchtower.config import Fleet, parse_fleet
from watchtower.lab.ca import LabCA
from watchtower.lab.https import WebFront

SUFFIX = "mailchk.test"
NS = [f"ns1.{SUFFIX}."]
ORG = "orgwide-mailchk.test"
REPORTS = "reports-mailchk.test"  # another organization: its reports need authorization


def d(label: str) -> str:
    """A fixture domain name: `<label>.mailchk.test` (full `.test` names pass through)."""
    return label if label.endswith(".test") else f"{label}.{SUFFIX}"


def _dkim_key(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(spki).decode()


def _base(domain: str, spf: str | None = "v=spf1 mx -all",
          dmarc: str | None = None) -> list[tuple[str, str, int, str]]:
    recs = [("@", "MX", 300, f"10 mail.{domain}."), ("mail", "A", 300, "127.0.0.1"),
            ("mta-sts", "A", 300, "127.0.0.1")]
    if spf is not None:
        recs.append(("@", "TXT", 300, txt(spf)))
    if dmarc is not None:
        recs.append(("_dmarc", "TXT", 300, txt(dmarc)))
    return recs


def zones() -> dict[str, list[tuple[str, str, int, str]]]:
    """Every fixture zone: the domain and its records (PowerDNS content form)."""
    good_dmarc = f"v=DMARC1; p=reject; rua=mailto:dmarc@{d('good')}"
    z: dict[str, list[tuple[str, str, int, str]]] = {}
    z[d("good")] = [*_base(d("good"), dmarc=good_dmarc), ("s1._domainkey", "TXT", 300, txt("v=DKIM1; k=rsa; p=" + _dkim_key(2048))), ("weak._domainkey", "TXT", 300, txt("v=DKIM1; k=rsa; p=" + _dkim_key(1024))), ("gone._domainkey", "TXT", 300, txt("v=DKIM1; k=rsa; p=")), ("_mta-sts", "TXT", 300, txt("v=STSv1; id=20260101")), ("_smtp._tls", "TXT", 300, txt(f"v=TLSRPTv1; rua=mailto:tls@{d('good')}")), ("_spf", "TXT", 300, txt("v=spf1 ip4:192.0.2.0/24 -all"))]
    z[d("plusall")] = _base(d("plusall"), "v=spf1 +all", "v=DMARC1; p=none")
    z[d("softfail")] = _base(d("softfail"), "v=spf1 mx ~all", good_dmarc)
    z[d("neutral")] = _base(d("neutral"), "v=spf1 mx ?all", good_dmarc)
    z[d("noall")] = _base(d("noall"), "v=spf1 mx", good_dmarc)
    z[d("ptr")] = _base(d("ptr"), "v=spf1 ptr -all", good_dmarc)
    z[d("redirect")] = _base(d("redirect"), f"v=spf1 redirect=_spf.{d('good')}", good_dmarc)
    many = " ".join(f"include:i{i}.{d('lookups')}" for i in range(11))
    z[d("lookups")] = _base(d("lookups"), f"v=spf1 {many} -all", good_dmarc) + [
        (f"i{i}", "TXT", 300, txt("v=spf1 ip4:192.0.2.1 -all")) for i in range(11)]
    voids = " ".join(f"a:n{i}.{d('voids')}" for i in range(3))
    z[d("voids")] = _base(d("voids"), f"v=spf1 {voids} -all", good_dmarc)
    z[d("loop")] = [*_base(d("loop"), f"v=spf1 include:a.{d('loop')} -all", good_dmarc), ("a", "TXT", 300, txt(f"v=spf1 include:{d('loop')} -all"))]
    z[d("missing-include")] = _base(d("missing-include"),
                                    f"v=spf1 include:nowhere.{d('missing-include')} -all",
                                    good_dmarc)
    z[d("twospf")] = [*_base(d("twospf"), "v=spf1 -all", good_dmarc), ("@", "TXT", 300, txt("v=spf1 mx -all"))]
    z[d("syntax")] = _base(d("syntax"), "v=spf1 ip4:192.0.2.0/33 -all",
                           "v=DMARC1; p=reject; p=none")
    z[d("nospf")] = _base(d("nospf"), None, good_dmarc)
    z[d("nodmarc")] = _base(d("nodmarc"))
    z[d("dmarcnone")] = _base(d("dmarcnone"), dmarc="v=DMARC1; p=none; rua=mailto:x@"
                              + d("dmarcnone"))
    z[d("twodmarc")] = [*_base(d("twodmarc"), dmarc="v=DMARC1; p=reject"), ("_dmarc", "TXT", 300, txt("v=DMARC1; p=none"))]
    # The registrable parent of the fixtures: DMARC discovery falls back to it (no record).
    z[SUFFIX] = [("ns1", "A", 300, "127.0.0.1")]
    # An organizational domain whose record covers a subdomain without its own.
    z[ORG] = [*_base(ORG, dmarc=f"v=DMARC1; p=reject; sp=quarantine; rua=mailto:r@{ORG}"), ("sub", "MX", 300, f"10 mail.{ORG}."), ("sub", "TXT", 300, txt("v=spf1 mx -all"))]
    z[REPORTS] = [("@", "MX", 300, f"10 mail.{REPORTS}."),
                       ("mail", "A", 300, "127.0.0.1"),
                       (f"{d('authorized')}._report._dmarc", "TXT", 300, txt("v=DMARC1"))]
    z[d("external")] = _base(d("external"), dmarc=f"v=DMARC1; p=reject; rua=mailto:r@{REPORTS}")
    z[d("authorized")] = _base(d("authorized"),
                               dmarc=f"v=DMARC1; p=reject; rua=mailto:r@{REPORTS}")
    z[d("parked")] = [("@", "MX", 300, "0 ."), ("@", "TXT", 300, txt("v=spf1 -all")),
                      ("_dmarc", "TXT", 300, txt("v=DMARC1; p=reject"))]
    z[d("halfparked")] = [("@", "TXT", 300, txt("v=spf1 -all")),
                          ("_dmarc", "TXT", 300, txt("v=DMARC1; p=quarantine"))]
    z[d("cname-mx")] = [("@", "MX", 300, f"10 alias.{d('cname-mx')}."),
                        ("alias", "CNAME", 300, f"mail.{d('good')}."),
                        ("@", "TXT", 300, txt("v=spf1 -all"))]
    # DNSBL zones: 127.0.0.1 listed, refused (public-resolver code), not listed.
    z[d("bl")] = [("1.0.0.127", "A", 300, "127.0.0.2"),
                  ("1.0.0.127", "TXT", 300, txt("listed for the test"))]
    z[d("bl-refuse")] = [("1.0.0.127", "A", 300, "127.255.255.254")]
    z[d("bl-clean")] = [("2.0.0.127", "A", 300, "127.0.0.2")]
    # STS fixtures (policies served by the web front below).
    for label in ("sts-redirect", "sts-testing", "sts-uncovered", "sts-html"):
        z[d(label)] = [*_base(d(label), dmarc=good_dmarc), ("_mta-sts", "TXT", 300, txt("v=STSv1; id=1"))]
    return z


@dataclass
class MailWorld:
    """The running fixture servers and how to point a fleet at them."""

    dns: PowerDNS
    ca: LabCA
    web: WebFront

    def fleet(self, mail_domains: list[dict[str, Any]], **probe: Any) -> Fleet:
        base: dict[str, Any] = {
            "nameservers": [f"127.0.0.1:{self.dns.dns_port}"],
            "authoritative_port": self.dns.dns_port,
            "dns_timeout": 2.0,
            "http_timeout": 5.0,
            "ca_bundle": str(self.ca.cert_path),
        }
        base.update(probe)
        sts = [f"https://mta-sts.{m['name']}:{self.web.https_port}/" for m in mail_domains]
        return parse_fleet({"probe": base, "mail_domains": mail_domains,
                            "endpoints": [{"url": u} for u in sts]})


def _policy_app(body: bytes, *, status: str = "200 OK", ctype: str = "text/plain",
                location: str | None = None) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers = [("Content-Type", ctype)]
        if location:
            headers.append(("Location", location))
        start_response(status, headers)
        return [body]

    return app


def _policy(mode: str, *mx: str) -> bytes:
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), "max_age: 86400"]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="session")
def mail_world(powerdns: PowerDNS, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[MailWorld]:
    for name, records in zones().items():
        powerdns.recreate_zone(name, NS, records)
    ca = LabCA(Path(tmp_path_factory.mktemp("mail-ca")))
    web = WebFront("127.0.0.1", 0, 0)
    sites = {
        d("good"): _policy_app(_policy("enforce", f"mail.{d('good')}")),
        d("sts-redirect"): _policy_app(b"", status="301 Moved Permanently",
                                       location=f"https://mta-sts.{d('good')}/"),
        d("sts-testing"): _policy_app(_policy("testing", f"mail.{d('sts-testing')}")),
        d("sts-uncovered"): _policy_app(_policy("enforce", f"mx.{d('sts-uncovered')}")),
        d("sts-html"): _policy_app(_policy("enforce", f"mail.{d('sts-html')}"),
                                   ctype="text/html"),
    }
    for domain, app in sites.items():
        host = f"mta-sts.{domain}"
        issued = ca.issue([host])
        web.add_site(host, str(issued.cert_path), str(issued.key_path), app)
    web.start()
    yield MailWorld(powerdns, ca, web)
    web.stop()
