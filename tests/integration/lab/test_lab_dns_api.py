"""The lab's DNS API follows PowerDNS: the same requests sent to the lab and to a real PowerDNS
Authoritative (Debian's pdns-server, gsqlite3) holding the same zone get the same status codes,
content types and shapes, and the same RRsets back; a PATCH changes what each one's DNS answers.

The requests are the ones watchtower makes (watchtower/net/powerdns.py builds them: the zone
fetch, REPLACE and DELETE PATCHes, several RRsets in one PATCH as dns.declared plans), plus the
refusals a client meets: a wrong key, an unknown zone, a body PowerDNS rejects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import pytest
import requests

from watchtower.config import DnsApi, Secret
from watchtower.lab import Lab
from watchtower.net.powerdns import PowerDnsApi, delete_body, replace_body
from watchtower.probe.clients import dns_api_endpoint

ZONE = "alpha.test"
DMARC = f"_dmarc.{ZONE}."


@dataclass
class Side:
    """One server under comparison: its API and its DNS port."""

    name: str
    base: str  # http://host:port
    key_file: Path
    dns_address: str
    dns_port: int

    @property
    def key(self) -> str:
        return self.key_file.read_text().strip()

    def zone_url(self, zone: str = ZONE) -> str:
        return f"{self.base}/api/v1/servers/localhost/zones/{zone}."

    def call(self, method: str, zone: str = ZONE, body: Any = None, key: str | None = None,
             headers: dict[str, str] | None = None, raw: bytes | None = None
             ) -> requests.Response:
        sent = {"X-API-Key": self.key if key is None else key, **(headers or {})}
        if raw is not None:
            return requests.request(method, self.zone_url(zone), data=raw, headers=sent,
                                    timeout=10)
        return requests.request(method, self.zone_url(zone), json=body, headers=sent,
                                timeout=10)

    def client(self) -> PowerDnsApi:
        """The client watchtower makes from a `[[dns_apis]]` entry naming this server."""
        api = DnsApi(name=self.name, url=self.base,
                     api_key=Secret.model_validate({"$file": str(self.key_file)}), zones=[ZONE])
        return PowerDnsApi(dns_api_endpoint(api, timeout=10))

    def answer(self, name: str, rtype: str) -> list[str]:
        reply = dns.query.udp(dns.message.make_query(name, rtype), self.dns_address,
                              port=self.dns_port, timeout=5)
        return sorted(rd.to_text() for rrset in reply.answer for rd in rrset
                      if rrset.rdtype == dns.rdatatype.from_text(rtype))


@pytest.fixture(scope="module")
def sides(powerdns: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    """A one-domain lab, and PowerDNS given the lab zone's records (its own SOA, signed)."""
    tmp = tmp_path_factory.mktemp("api-lab")
    lab = Lab(tmp / "lab", domains=1, faults={}, dns_port=0, https_port=0,
              metrics_listen="127.0.0.1:0")
    lab.start()
    try:
        ours = Side("lab", lab.dns_api.url, lab.dns_api.key_path, "127.0.0.1", lab.dns.port)
        served = ours.client().rrsets(ZONE)
        ns = next(r for r in served if r["type"] == "NS")
        records = [(r["name"], r["type"], r["ttl"], rec["content"]) for r in served
                   if r["type"] not in ("SOA", "NS") for rec in r["records"]]
        powerdns.recreate_zone(ZONE, [rec["content"] for rec in ns["records"]], records,
                               dnssec=True)
        (tmp / "pdns-key").write_text(powerdns.api_key)
        theirs = Side("pdns", powerdns.api_url.removesuffix("/api/v1"), tmp / "pdns-key",
                      powerdns.address, powerdns.dns_port)
        yield ours, theirs
        powerdns.delete_zone(ZONE)
    finally:
        lab.stop()


def _shape(value: Any) -> Any:
    """The keys and value types of a JSON document, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) \
        else type(value).__name__


#: RRsets that differ by design: each server's own SOA, and the lab's MTA-STS id, which follows
#: its serial (every change to a lab zone is a new policy id).
OWN = {(f"{ZONE}.", "SOA"), (f"_mta-sts.{ZONE}.", "TXT")}


def _rrsets(side: Side) -> dict[tuple[str, str], tuple[int, list[str]]]:
    return {(r["name"], r["type"]): (r["ttl"], sorted(x["content"] for x in r["records"]))
            for r in side.client().rrsets(ZONE) if (r["name"], r["type"]) not in OWN}


def _same(lab: requests.Response, pdns: requests.Response) -> None:
    """Same status, content type and body shape (errors: the same text)."""
    assert lab.status_code == pdns.status_code, (lab.text, pdns.text)
    assert lab.headers.get("Content-Type") == pdns.headers.get("Content-Type")
    if pdns.headers.get("Content-Type") == "application/json":
        assert _shape(lab.json()) == _shape(pdns.json())
        if "error" in pdns.json():
            assert lab.json() == pdns.json()
    else:
        assert lab.text == pdns.text


def test_the_zone_fetch_answers_alike(sides: tuple[Side, Side]) -> None:
    ours, theirs = sides
    lab, pdns = ours.call("GET"), theirs.call("GET")
    _same(lab, pdns)
    assert _shape(lab.json()["rrsets"][0]) == _shape(pdns.json()["rrsets"][0])
    assert _rrsets(ours) == _rrsets(theirs)
    assert lab.json()["name"] == pdns.json()["name"] == f"{ZONE}."


def test_replace_and_delete_change_the_dns_answers_alike(sides: tuple[Side, Side]) -> None:
    ours, theirs = sides
    wanted = '"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@alpha.test"'
    for body in (replace_body(DMARC, "TXT", 300, [wanted]), delete_body(DMARC, "TXT"),
                 replace_body(DMARC, "TXT", 600, [wanted, '"other text"'])):
        lab, pdns = ours.call("PATCH", body=body), theirs.call("PATCH", body=body)
        _same(lab, pdns)
        assert lab.status_code == 204 and lab.content == b""
        assert _rrsets(ours) == _rrsets(theirs)
        assert ours.answer(DMARC, "TXT") == theirs.answer(DMARC, "TXT")
    assert ours.answer(DMARC, "TXT") == sorted([wanted, '"other text"'])


def test_a_patch_of_several_rrsets_is_one_change(sides: tuple[Side, Side]) -> None:
    """What a dns.declared plan sends: REPLACE and DELETE of several RRsets in one body."""
    ours, theirs = sides
    body = {"rrsets": [
        *replace_body(f"{ZONE}.", "CAA", 3600, ['0 issue "letsencrypt.org"',
                                                 '0 iodef "mailto:ca@alpha.test"'])["rrsets"],
        *replace_body(f"extra.{ZONE}.", "A", 300, ["192.0.2.7"])["rrsets"],
        *delete_body(f"_smtp._tls.{ZONE}.", "TXT")["rrsets"]]}
    _same(ours.call("PATCH", body=body), theirs.call("PATCH", body=body))
    assert _rrsets(ours) == _rrsets(theirs)
    assert ours.answer(f"extra.{ZONE}.", "A") == theirs.answer(f"extra.{ZONE}.", "A") \
        == ["192.0.2.7"]


def test_an_invalid_patch_changes_nothing_on_either(sides: tuple[Side, Side]) -> None:
    """The second RRset is out of the zone: both refuse the whole body."""
    ours, theirs = sides
    before = _rrsets(ours)
    body = {"rrsets": [*replace_body(DMARC, "TXT", 300, ['"v=DMARC1; p=none"'])["rrsets"],
                       *replace_body("_dmarc.elsewhere.test.", "TXT", 300,
                                     ['"v=DMARC1; p=none"'])["rrsets"]]}
    _same(ours.call("PATCH", body=body), theirs.call("PATCH", body=body))
    assert _rrsets(ours) == before == _rrsets(theirs)


def _rrset(**fields: Any) -> dict[str, Any]:
    return {"rrsets": [{"name": DMARC, "type": "TXT", "ttl": 300, "changetype": "REPLACE",
                        "records": [{"content": '"v=DMARC1; p=none"', "disabled": False}],
                        **fields}]}


REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("wrong key", {"method": "GET", "key": "not-the-key"}),
    ("wrong key, PATCH", {"method": "PATCH", "key": "", "body": _rrset()}),
    ("unknown zone", {"method": "GET", "zone": "nosuch.test"}),
    ("unknown zone, JSON wanted", {"method": "GET", "zone": "nosuch.test",
                                   "headers": {"Accept": "application/json"}}),
    ("unknown zone, PATCH", {"method": "PATCH", "zone": "nosuch.test", "body": _rrset()}),
    ("not JSON", {"method": "PATCH", "raw": b"{rrsets"}),
    ("no rrsets", {"method": "PATCH", "body": {"records": []}}),
    ("out of zone", {"method": "PATCH", "body": _rrset(name="_dmarc.elsewhere.test.")}),
    ("name without the final dot", {"method": "PATCH", "body": _rrset(name="_dmarc.alpha.test")}),
    ("unknown type", {"method": "PATCH", "body": _rrset(type="NOTATYPE")}),
    ("no ttl", {"method": "PATCH", "body": _rrset(ttl=None)}),
    ("changetype", {"method": "PATCH", "body": _rrset(changetype="UPDATE")}),
    ("unquoted TXT", {"method": "PATCH",
                      "body": _rrset(records=[{"content": "v=DMARC1; p=none"}])}),
    ("relative MX", {"method": "PATCH", "body": _rrset(
        name=f"{ZONE}.", type="MX", records=[{"content": "10 mail.alpha.test"}])}),
    ("same record twice", {"method": "PATCH", "body": _rrset(
        records=[{"content": '"x"'}, {"content": '"x"'}])}),
    ("CNAME beside an address", {"method": "PATCH", "body": _rrset(
        name=f"www.{ZONE}.", type="CNAME", records=[{"content": f"{ZONE}."}])}),
    ("two CNAMEs", {"method": "PATCH", "body": _rrset(
        name=f"alias.{ZONE}.", type="CNAME",
        records=[{"content": f"{ZONE}."}, {"content": f"www.{ZONE}."}])}),
    ("an IPv4 address as AAAA", {"method": "PATCH", "body": _rrset(
        name=f"www.{ZONE}.", type="AAAA", records=[{"content": "::ffff:192.0.2.1"}])}),
]


@pytest.mark.parametrize(("why", "request_"), REFUSED, ids=[why for why, _ in REFUSED])
def test_refusals_are_answered_alike(sides: tuple[Side, Side], why: str,
                                     request_: dict[str, Any]) -> None:
    ours, theirs = sides
    before = _rrsets(ours)
    request_ = dict(request_)
    method = request_.pop("method")
    lab, pdns = ours.call(method, **request_), theirs.call(method, **request_)
    _same(lab, pdns)
    assert lab.status_code >= 400
    assert _rrsets(ours) == before == _rrsets(theirs)
