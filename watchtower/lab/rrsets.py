"""The lab's zones in the PowerDNS Authoritative API's JSON, and PATCH bodies as zone changes.

Pure: no sockets (the server is `watchtower.lab.dnsapi`). What PowerDNS does is taken from its
documentation and, where that is silent, from its source (PowerDNS 4.7, the version Debian 12
ships and the tests compare against):
- Zone and RRSet objects: https://doc.powerdns.com/authoritative/http-api/zone.html
- errors as `{"error": "..."}`, 422 for input that fails validation:
  https://doc.powerdns.com/authoritative/http-api/index.html and
  https://doc.powerdns.com/authoritative/common/api/dataformat.html
- the validation order and messages: pdns/ws-auth.cc `patchZone`, `gatherRecords`,
  `checkNewRecords`; pdns/ws-api.cc `apiNameToDNSName`, `apiZoneIdToName` (tag auth-4.7.3).

What the lab leaves out, because watchtower never sends it (each answered with a 422 that says
so, never half-applied): disabled records, comments, and changes to the SOA or to DNSSEC records
(the lab keeps the SOA serial and signs its zones itself).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone
from dns.rdatatype import RdataType

from watchtower.lab.fleet import Slot
from watchtower.lab.zones import Edit

IN = dns.rdataclass.IN
#: Records PowerDNS keeps apart from the zone's records (it signs live): not in its RRsets.
DNSSEC_TYPES = frozenset({dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3,
                          dns.rdatatype.NSEC3PARAM, dns.rdatatype.DNSKEY, dns.rdatatype.CDS,
                          dns.rdatatype.CDNSKEY})
#: Types that must be alone in their RRset, and a type that must be alone at its name
#: (ws-auth.cc `onlyOneEntryTypes`, `exclusiveEntryTypes`).
ONE_RECORD_TYPES = frozenset({dns.rdatatype.CNAME, dns.rdatatype.DNAME, dns.rdatatype.SOA})
#: Types whose content is quoted character strings: PowerDNS wants the quote first.
QUOTED_TYPES = frozenset({dns.rdatatype.TXT, dns.rdatatype.SPF})
SERVER_ID = "localhost"


class ApiError(Exception):
    """A request PowerDNS refuses: `status` and the text of its `error` member."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def invalid(message: str) -> ApiError:
    """PowerDNS's ApiException and JsonException: 422 Unprocessable Entity."""
    return ApiError(422, message)


def zone_name(zone_id: str) -> dns.name.Name:
    """The zone a URL's zone id names: `=XX` decoded (apiZoneIdToName); names without the
    final dot are taken as absolute, as PowerDNS's DNSName does."""
    if not zone_id:
        raise ApiError(400, "Bad Request")
    out, i = [], 0
    while i < len(zone_id):
        if zone_id[i] == "=":
            code = zone_id[i + 1:i + 3]
            if len(code) != 2 or any(c not in "0123456789ABCDEF" for c in code):
                raise ApiError(400, "Bad Request")
            out.append(chr(int(code, 16)))
            i += 3
        else:
            out.append(zone_id[i])
            i += 1
    text = "".join(out)
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException:
        raise invalid(f"Unable to parse DNS Name '{text}'") from None


def zone_id(name: dns.name.Name) -> str:
    """apiZoneNameToId: letters, digits, '.' and '-' as they are, anything else as =XX."""
    return "".join(c if c.isascii() and (c.isalnum() or c in ".-") else f"={ord(c):02X}"
                   for c in name.to_text())


def zone_document(zone: dns.zone.Zone, serial: int, signed: bool) -> dict[str, Any]:
    """The Zone object GET /servers/localhost/zones/{zone_id} answers, with its RRsets in
    PowerDNS's order (names and then types in descending canonical order)."""
    assert zone.origin is not None
    zid = zone_id(zone.origin)
    rrsets = [
        {"comments": [], "name": name.to_text(), "records": [
            {"content": rd.to_text(), "disabled": False} for rd in rds],
         "ttl": rds.ttl, "type": dns.rdatatype.to_text(rds.rdtype)}
        for name, rds in sorted(zone.iterate_rdatasets(), key=lambda it: (it[0], it[1].rdtype),
                                reverse=True)
        if rds.rdtype not in DNSSEC_TYPES]
    return {"account": "", "api_rectify": False, "catalog": "", "dnssec": signed,
            "edited_serial": serial, "id": zid, "kind": "Native", "last_check": 0,
            "master_tsig_key_ids": [], "masters": [], "name": zone.origin.to_text(),
            "notified_serial": 0, "nsec3narrow": False, "nsec3param": "", "rrsets": rrsets,
            "serial": serial, "slave_tsig_key_ids": [], "soa_edit": "",
            "soa_edit_api": "DEFAULT", "url": f"/api/v1/servers/{SERVER_ID}/zones/{zid}"}


def changes(zone: dns.zone.Zone, document: Any) -> dict[Slot, Edit]:
    """The RRset changes of a PATCH body, in order, validated as PowerDNS validates them:
    nothing is applied unless all of them are valid (PowerDNS runs them in one transaction)."""
    rrsets = document.get("rrsets") if isinstance(document, dict) else None
    if not isinstance(rrsets, list):
        raise invalid("No rrsets given in update request")
    out: dict[Slot, Edit] = {}
    seen: set[tuple[dns.name.Name, RdataType, str]] = set()
    for rrset in rrsets:
        changetype, owner, rdtype = _head(rrset)
        key = (owner, rdtype, changetype)
        if key in seen:
            raise invalid(f"Duplicate RRset {owner} IN {_type(rdtype)} with changetype: "
                          f"{changetype}")
        seen.add(key)
        if changetype not in ("DELETE", "REPLACE"):
            raise invalid("Changetype not understood")
        _lab_keeps(rdtype)
        if changetype == "REPLACE":
            out[(owner, rdtype)] = _replacement(zone, rrset, owner, rdtype)
        elif zone.origin is not None and owner.is_subdomain(zone.origin):
            out[(owner, rdtype)] = None  # DELETE (outside the zone there is nothing to delete)
    return out


def _head(rrset: Any) -> tuple[str, dns.name.Name, RdataType]:
    """changetype, name and type of one RRset of the body (stringFromJson, apiNameToDNSName)."""
    changetype = _string(rrset, "changetype").upper()
    text = _string(rrset, "name")
    if not text.endswith("."):
        raise invalid(f"DNS Name '{text}' is not canonical")
    try:
        owner = dns.name.from_text(text)
    except dns.exception.DNSException:
        raise invalid(f"Unable to parse DNS Name '{text}'") from None
    type_text = _string(rrset, "type")
    try:
        rdtype = dns.rdatatype.from_text(type_text)
    except dns.rdatatype.UnknownRdatatype:
        raise invalid(f"RRset {owner} IN {type_text}: unknown type given") from None
    return changetype, owner, rdtype


def _lab_keeps(rdtype: RdataType) -> None:
    if rdtype == dns.rdatatype.SOA:
        raise invalid("the lab keeps the SOA of its zones itself (its serial counts every "
                      "change); it cannot be changed through the lab's API")
    if rdtype in DNSSEC_TYPES:
        raise invalid(f"the lab signs its zones itself: {_type(rdtype)} records cannot be "
                      "changed through the lab's API")


def _replacement(zone: dns.zone.Zone, rrset: dict[str, Any], owner: dns.name.Name,
                 rdtype: RdataType) -> Edit:
    """A REPLACE: the new RRset (None: no records left), after PowerDNS's checks."""
    assert zone.origin is not None
    where = f"RRset {owner} IN {_type(rdtype)}"
    if not owner.is_subdomain(zone.origin):
        raise invalid(f"{where}: Name is out of zone")
    records, comments = rrset.get("records"), rrset.get("comments")
    if not isinstance(records, list):
        if isinstance(comments, list):
            raise invalid("comments: the lab keeps no comments; send records")
        raise invalid(f"No change for {where}")
    ttl = rrset.get("ttl")
    if not isinstance(ttl, int) or isinstance(ttl, bool):
        raise invalid("Key 'ttl' not an Integer or not present")
    rdatas = list(_records(records, owner, rdtype))
    _check_set(rdatas, owner, rdtype, where)
    _check_exclusive(zone, owner, rdtype, where)
    if not rdatas:
        return None
    rds = dns.rdataset.Rdataset(IN, rdtype)
    for rd in rdatas:
        rds.add(rd, ttl)
    return rds


def _records(records: list[Any], owner: dns.name.Name, rdtype: RdataType
             ) -> Iterator[dns.rdata.Rdata]:
    """Each record's content, parsed and required to be in the form PowerDNS prints it (names
    dotted, TXT quoted), as gatherRecords requires."""
    for record in records:
        content = _string(record, "content")
        disabled = record.get("disabled") if isinstance(record, dict) else None
        if disabled not in (None, False):
            raise invalid("disabled records: the lab serves every record it holds")
        where = f"Record {owner}/{_type(rdtype)} '{content}'"
        unparsable = f"{where}: Parsing record content (try 'pdnsutil check-zone'): "
        if rdtype in QUOTED_TYPES and not content.startswith('"'):
            raise invalid(f"{unparsable}Data field in DNS should start with quote (\") at "
                          f"position 0 of '{content}'")
        try:
            rd = dns.rdata.from_text(IN, rdtype, content, origin=dns.name.root,
                                     relativize=False)
        except (dns.exception.DNSException, ValueError) as exc:
            raise invalid(f"{unparsable}{exc}") from None
        if rdtype == dns.rdatatype.AAAA:
            if "." in content or not _is_ipv6(content):
                raise invalid(f"{where}: Invalid IPv6 address")
        elif rd.to_text().lower() != content.lower():
            raise invalid(f"{where}: Not in expected format (parsed as '{rd.to_text()}')")
        yield rd


def _check_set(rdatas: list[dns.rdata.Rdata], owner: dns.name.Name, rdtype: RdataType,
               where: str) -> None:
    """checkNewRecords: one record for CNAME-like types, no record twice."""
    if rdtype in ONE_RECORD_TYPES and len(rdatas) > 1:
        raise invalid(f"{where} has more than one record")
    texts = [rd.to_text() for rd in rdatas]
    for text in texts:
        if texts.count(text) > 1:
            raise invalid(f'Duplicate record in RRset {owner} IN {_type(rdtype)} with '
                          f'content "{text}"')


def _check_exclusive(zone: dns.zone.Zone, owner: dns.name.Name, rdtype: RdataType,
                     where: str) -> None:
    """A CNAME shares its name with nothing else (exclusiveEntryTypes)."""
    node = zone.get_node(owner)
    present = {rds.rdtype for rds in node or []} - DNSSEC_TYPES - {rdtype}
    if present and (rdtype == dns.rdatatype.CNAME or dns.rdatatype.CNAME in present):
        raise invalid(f"{where}: Conflicts with pre-existing RRset")


def _string(container: Any, key: str) -> str:
    value = container.get(key) if isinstance(container, dict) else None
    if not isinstance(value, str):
        raise invalid(f"Key '{key}' not present or not a String")
    return value


def _type(rdtype: RdataType) -> str:
    return dns.rdatatype.to_text(rdtype)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
