"""The lab DNS server's DNSSEC, DS-at-the-cut, AXFR and open-resolver behaviour."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone

from watchtower.lab.dnsserver import LabSigner, View, answer, axfr_messages
from watchtower.lab.fleet import LabDomain, build_lab_dns, parent_zone, zone_for

SIGNER = LabSigner()


def _ask(view: View, name: str, rdtype: str, *, rd: bool = False, do: bool = True
         ) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, want_dnssec=do)
    if not rd:
        q.flags &= ~dns.flags.RD
    return answer(view, q)


def test_ds_comes_from_the_parent_side_of_the_cut() -> None:
    d = LabDomain("alpha.test", 0)
    view = View(zones={z.origin: z for z in (zone_for(d, '"k"', signer=SIGNER),
                                             parent_zone([d], SIGNER))})
    reply = _ask(view, "alpha.test.", "DS")
    assert reply.flags & dns.flags.AA
    ds = [rr for rr in reply.answer if rr.rdtype == dns.rdatatype.DS]
    assert ds and ds[0][0].to_text() == SIGNER.ds("alpha.test.")
    assert any(rr.rdtype == dns.rdatatype.RRSIG for rr in reply.answer)


def test_axfr_only_where_opened() -> None:
    d = LabDomain("alpha.test", 0, {"open-axfr"})
    lab = build_lab_dns([d], '"k"', None)
    q = dns.message.make_query("alpha.test.", "AXFR")
    msgs = axfr_messages(lab.views["127.0.0.1"], q)
    records = sum(len(rr) for m in msgs for rr in m.answer)
    assert records > 10 and msgs[0].answer[0].rdtype == dns.rdatatype.SOA
    closed = build_lab_dns([LabDomain("alpha.test", 0)], '"k"', None)
    assert axfr_messages(closed.views["127.0.0.1"], q)[0].rcode() == dns.rcode.REFUSED


def test_open_resolver_view_claims_recursion() -> None:
    lab = build_lab_dns([LabDomain("alpha.test", 0, {"open-recursion"})], '"k"', None)
    reply = _ask(lab.views["127.0.1.3"], "example.org.", "A", rd=True)
    assert reply.flags & dns.flags.RA and reply.rcode() == dns.rcode.NXDOMAIN
    assert _ask(lab.views["127.0.0.1"], "example.org.", "A", rd=True).rcode() \
        == dns.rcode.REFUSED


def test_faulty_second_view() -> None:
    d = LabDomain("alpha.test", 0, {"lame-ns"})
    e = LabDomain("bravo.test", 1, {"serial-mismatch"})
    lab = build_lab_dns([d, e], '"k"', None)
    ns2 = lab.views["127.0.1.2"]
    assert _ask(ns2, "alpha.test.", "SOA").rcode() == dns.rcode.REFUSED
    soa = _ask(ns2, "bravo.test.", "SOA").answer[0][0]
    assert soa.serial == _ask(lab.views["127.0.0.1"], "bravo.test.", "SOA").answer[0][0].serial - 1


def test_anchor_is_the_parent_key() -> None:
    lab = build_lab_dns([LabDomain("alpha.test", 0)], '"k"', SIGNER)
    assert lab.anchor.startswith("test. 3600 IN DNSKEY 257 3 13 ")



