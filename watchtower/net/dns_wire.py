"""A DNS question as the bytes the resolver sends, and the test that a reply answers it.

Why not `dns.message.make_query(...).to_wire()` and `query.is_response(reply)`: a question is
twelve header bytes, the name, its type and class and an EDNS OPT record (RFC 1035 4.1,
RFC 6891 6.1), yet building it as a dnspython Message, rendering it and comparing the reply's
question section through Message objects was 40 % of the resolver's CPU per exchange (about
320 of 770 us, against a UDP responder on loopback). The reply is still parsed by dnspython
(`dns.message.from_wire`): that is where the facts come from.

The bytes are those of dnspython's `make_query(name, type, use_edns=0, payload=...,
want_dnssec=...)` with the same flags and id: tests/unit/net/test_dns_wire.py holds them equal,
and `answered_by` to `Message.is_response`.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

#: Replies to a malformed or refused question may leave the question section out.
_MAY_OMIT_QUESTION = frozenset({dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP,
                                dns.rcode.REFUSED})
_DO = 0x8000  # the DNSSEC OK bit in the OPT record's TTL field (RFC 3225 3)


@functools.lru_cache(maxsize=16384)
def _name_wire(name: dns.name.Name) -> bytes:
    wire = name.to_wire()  # uncompressed: the question is the message's first name
    if wire is None:  # only when writing to a file, which this does not
        raise ValueError(f"{name} has no wire form")
    return wire


@dataclass(frozen=True, slots=True)
class Question:
    """One question with its header flags (RD, AD, CD) and EDNS settings; `wire(id)` is the
    datagram, `message(id)` the same question as a dnspython Message (for TCP after TC)."""

    name: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    flags: int
    dnssec: bool = False
    payload: int = 1232

    @classmethod
    def make(cls, name: str | dns.name.Name, rdtype: str | dns.rdatatype.RdataType, *,
             flags: int, dnssec: bool = False, payload: int = 1232) -> Question:
        """Raises dns.exception.DNSException for a name or type that cannot be asked."""
        qname = name if isinstance(name, dns.name.Name) else dns.name.from_text(name)
        qtype = (rdtype if isinstance(rdtype, dns.rdatatype.RdataType)
                 else dns.rdatatype.from_text(rdtype))
        _name_wire(qname)  # a name too long for the wire fails here, not in the sender
        return cls(qname, qtype, flags, dnssec, payload)

    def wire(self, qid: int) -> bytes:
        header = struct.pack("!HHHHHH", qid, self.flags, 1, 0, 0, 1)
        question = struct.pack("!HH", self.rdtype, dns.rdataclass.IN)
        opt = b"\x00" + struct.pack("!HHIH", dns.rdatatype.OPT, self.payload,
                                    _DO if self.dnssec else 0, 0)
        return header + _name_wire(self.name) + question + opt

    def message(self, qid: int) -> dns.message.Message:
        query = dns.message.make_query(self.name, self.rdtype, want_dnssec=self.dnssec,
                                       use_edns=0, payload=self.payload, id=qid)
        query.flags = dns.flags.Flag(self.flags)
        return query

    def answered_by(self, qid: int, reply: dns.message.Message) -> bool:
        """Whether `reply` answers this question sent with `qid`, as dnspython's
        `Message.is_response` decides it: QR set, same id and opcode, the same question (an
        error reply may leave it out)."""
        if (not reply.flags & dns.flags.QR or reply.id != qid
                or dns.opcode.from_flags(reply.flags) != dns.opcode.QUERY):
            return False
        if not reply.question:
            return reply.rcode() in _MAY_OMIT_QUESTION
        return all(rr.name == self.name and rr.rdtype == self.rdtype
                   and rr.rdclass == dns.rdataclass.IN for rr in reply.question)
