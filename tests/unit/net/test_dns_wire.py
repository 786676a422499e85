"""watchtower/net/dns_wire.py: the question bytes are dnspython's, byte for byte, and a reply
answers a question exactly when dnspython's `Message.is_response` says so."""

from __future__ import annotations

import itertools

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rrset
import pytest

from watchtower.net.dns_wire import Question

NAMES = ["example.org", "_smtp._tls.Mail.Example.ORG.", "xn--bcher-kva.example", ".",
         "a\\.b.example", "s1._domainkey.example.net", "x" * 63 + ".test"]
TYPES = ["A", "AAAA", "TXT", "MX", "DNSKEY", "TLSA", "CAA", "SOA", "NS", "DS"]
FLAGS = [0, dns.flags.RD, dns.flags.RD | dns.flags.AD,
         dns.flags.RD | dns.flags.AD | dns.flags.CD]


def dnspython_query(name: str, rdtype: str, flags: int, dnssec: bool, qid: int
                    ) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, want_dnssec=dnssec, use_edns=0,
                                   payload=1232, id=qid)
    query.flags = dns.flags.Flag(flags)
    return query


@pytest.mark.parametrize(("name", "rdtype"), list(itertools.product(NAMES, TYPES)))
def test_the_bytes_are_dnspythons(name: str, rdtype: str) -> None:
    for flags, dnssec, qid in itertools.product(FLAGS, (False, True), (0, 0xBEEF)):
        question = Question.make(name, rdtype, flags=flags, dnssec=dnssec)
        expected = dnspython_query(name, rdtype, flags, dnssec, qid).to_wire()
        assert question.wire(qid) == expected
        assert question.message(qid).to_wire() == expected


def test_a_name_that_cannot_be_asked_fails_when_made() -> None:
    with pytest.raises(dns.exception.DNSException):
        Question.make("a" * 64 + ".test", "A", flags=0)
    with pytest.raises(dns.exception.DNSException):
        Question.make("example.org", "NOSUCHTYPE", flags=0)


def replies(query: dns.message.Message) -> list[dns.message.Message]:
    """Answers, near misses and spoofs of `query`."""
    out = []
    for rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL,
                  dns.rcode.REFUSED, dns.rcode.FORMERR):
        reply = dns.message.make_response(query)
        reply.set_rcode(rcode)
        out.append(reply)
        bare = dns.message.make_response(query)
        bare.set_rcode(rcode)
        bare.question = []
        out.append(bare)
    other_id = dns.message.make_response(query)
    other_id.id = (query.id + 1) % 65536
    not_qr = dns.message.make_response(query)
    not_qr.flags &= ~dns.flags.QR
    notify = dns.message.make_response(query)
    notify.set_opcode(dns.opcode.NOTIFY)
    upper = dns.message.make_response(query)
    upper.question = [dns.rrset.RRset(query.question[0].name.parent() if
                                      query.question[0].name != dns.name.root else
                                      dns.name.from_text("x."),
                                      query.question[0].rdclass, query.question[0].rdtype)]
    other_type = dns.message.make_response(query)
    other_type.question = [dns.rrset.RRset(query.question[0].name, query.question[0].rdclass,
                                           dns.rdatatype.HINFO)]
    shouted = dns.message.make_response(query)
    shouted.question = [dns.rrset.RRset(
        dns.name.from_text(query.question[0].name.to_text().upper()),
        query.question[0].rdclass, query.question[0].rdtype)]
    twice = dns.message.make_response(query)
    twice.question = [query.question[0], query.question[0]]
    extra = dns.message.make_response(query)
    extra.question = [query.question[0], other_type.question[0]]
    out += [other_id, not_qr, notify, upper, other_type, shouted, twice, extra]
    # through the wire, as a reply arrives
    return [dns.message.from_wire(r.to_wire()) for r in out]


@pytest.mark.parametrize("name", NAMES)
def test_answered_by_is_dnspythons_is_response(name: str) -> None:
    question = Question.make(name, "TXT", flags=dns.flags.RD, dnssec=True)
    query = question.message(4242)
    for reply in replies(query):
        assert question.answered_by(4242, reply) == query.is_response(reply), reply
