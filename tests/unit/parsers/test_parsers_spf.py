"""SPF parsing (table-driven) and limits evaluation against a dictionary-backed fake DNS."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from watchtower.parsers import ParseError
from watchtower.parsers.spf import (
    LookupAnswer,
    LookupFailure,
    Mechanism,
    Modifier,
    evaluate,
    parse,
    select_spf,
)


def summary(text: str) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for term in parse(text).terms:
        if isinstance(term, Mechanism):
            out.append((term.qualifier, term.name, term.domain,
                        str(term.network) if term.network else None, term.cidr4, term.cidr6))
        else:
            assert isinstance(term, Modifier)
            out.append(("=", term.name, term.value))
    return out


VALID = [
    ("v=spf1", []),
    ("v=spf1 ", []),
    ("V=SPF1 -ALL", [("-", "all", None, None, None, None)]),
    ("v=spf1 -all", [("-", "all", None, None, None, None)]),
    ("v=spf1 +all", [("+", "all", None, None, None, None)]),
    ("v=spf1 ?all", [("?", "all", None, None, None, None)]),
    ("v=spf1 all", [("+", "all", None, None, None, None)]),
    ("v=spf1  a   mx  ~all", [("+", "a", None, None, None, None),
                               ("+", "mx", None, None, None, None),
                               ("~", "all", None, None, None, None)]),
    ("v=spf1 a/24 mx//64 a:mail.example.com/28//48 -all",
     [("+", "a", None, None, 24, None), ("+", "mx", None, None, None, 64),
      ("+", "a", "mail.example.com", None, 28, 48), ("-", "all", None, None, None, None)]),
    ("v=spf1 a/0 a//0 a/32//128", [("+", "a", None, None, 0, None),
                                   ("+", "a", None, None, None, 0),
                                   ("+", "a", None, None, 32, 128)]),
    ("v=spf1 ip4:192.0.2.1 ip4:192.0.2.0/24 ip4:10.1.2.3/8",
     [("+", "ip4", None, "192.0.2.1/32", None, None), ("+", "ip4", None, "192.0.2.0/24", 24, None),
      ("+", "ip4", None, "10.0.0.0/8", 8, None)]),
    ("v=spf1 ip6:2001:db8::1 ip6:2001:db8::/32 ip6:::ffff:192.0.2.1/128 ip6:::/0",
     [("+", "ip6", None, "2001:db8::1/128", None, None),
      ("+", "ip6", None, "2001:db8::/32", None, 32),
      ("+", "ip6", None, "::ffff:c000:201/128", None, 128),
      ("+", "ip6", None, "::/0", None, 0)]),
    ("v=spf1 include:_spf.google.com ~all",
     [("+", "include", "_spf.google.com", None, None, None), ("~", "all", None, None, None, None)]),
    ("v=spf1 -include:bad.example.net ?exists:%{ir}.%{l1r+-}._spf.%{d} ptr ptr:example.org",
     [("-", "include", "bad.example.net", None, None, None),
      ("?", "exists", "%{ir}.%{l1r+-}._spf.%{d}", None, None, None),
      ("+", "ptr", None, None, None, None), ("+", "ptr", "example.org", None, None, None)]),
    ("v=spf1 redirect=_spf.example.com", [("=", "redirect", "_spf.example.com")]),
    ("v=spf1 Redirect=_spf.example.com. exp=explain.%{d}",
     [("=", "redirect", "_spf.example.com."), ("=", "exp", "explain.%{d}")]),
    ("v=spf1 foo=bar x-y.z_1= moo=%{i}%%%_%-", [("=", "foo", "bar"), ("=", "x-y.z_1", ""),
                                               ("=", "moo", "%{i}%%%_%-")]),
    ("v=spf1 a:%{d} mx:%{D2} exists:%{S}.%{v}.%{h}.%{p}.%{o}.example.com",
     [("+", "a", "%{d}", None, None, None), ("+", "mx", "%{D2}", None, None, None),
      ("+", "exists", "%{S}.%{v}.%{h}.%{p}.%{o}.example.com", None, None, None)]),
    ("v=spf1 a:example.123-4", [("+", "a", "example.123-4", None, None, None)]),
    ("v=spf1 include:x.example.com%{d}", [("+", "include", "x.example.com%{d}", None, None, None)]),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parse_valid(text: str, expected: list[tuple[object, ...]]) -> None:
    assert summary(text) == expected


INVALID = [
    ("", "does not start with 'v=spf1'"),
    ("v=spf10 -all", "does not start with 'v=spf1'"),
    ("v=spf2.0/pra -all", "does not start with 'v=spf1'"),
    (" v=spf1 -all", "does not start with 'v=spf1'"),
    ("v=spf1\t-all", "does not start with 'v=spf1'"),
    ("v=spf1 -all\t", "control character"),
    ("v=spf1 a\x00", "control character"),
    ("v=spf1 include:exämple.com", "non-ASCII"),
    ("v=spf1 foo", "unknown mechanism 'foo'"),
    ("v=spf1 -foo:bar.com", "unknown mechanism 'foo'"),
    ("v=spf1 ip5:1.2.3.4", "unknown mechanism 'ip5'"),
    ("v=spf1 redirect:_spf.example.com", "unknown mechanism 'redirect' (modifiers are written"),
    ("v=spf1 +", "qualifier without a mechanism"),
    ("v=spf1 ~redirect=example.com", "modifiers take no qualifier"),
    ("v=spf1 all:x", "'all' takes no argument"),
    ("v=spf1 all/24", "'all' takes no argument"),
    ("v=spf1 include", "'include' needs ':' and a domain"),
    ("v=spf1 include:", "missing domain after 'include:'"),
    ("v=spf1 include:example.com/24", "'include' takes no CIDR length"),
    ("v=spf1 exists:example.com/", "'exists' takes no CIDR length"),
    ("v=spf1 include/24", "'include' takes no CIDR length"),
    ("v=spf1 exists", "'exists' needs ':' and a domain"),
    ("v=spf1 ptr/24", "'ptr' takes no CIDR length"),
    ("v=spf1 ptr:", "missing domain after 'ptr:'"),
    ("v=spf1 ptr:example.com/24", "'ptr' takes no CIDR length"),
    ("v=spf1 a:", "missing domain after 'a:'"),
    ("v=spf1 mx:/24", "missing domain after 'mx:'"),
    ("v=spf1 ax", "unknown mechanism 'ax'"),
    ("v=spf1 a/24x", "bad CIDR length '/24x'"),
    ("v=spf1 a/33", "bad CIDR length '/33'"),
    ("v=spf1 a//129", "bad CIDR length '/129'"),
    ("v=spf1 a/024", "bad CIDR length '/024'"),
    ("v=spf1 a/", "bad CIDR length '/'"),
    ("v=spf1 a//", "bad CIDR length '//'"),
    ("v=spf1 mx:example.com/24x", "bad CIDR length '/24x'"),
    ("v=spf1 a/24/64", "bad CIDR length '/64'"),
    ("v=spf1 ip4", "'ip4' needs ':' and an address"),
    ("v=spf1 ip4:", "'ip4' needs ':' and an address"),
    ("v=spf1 ip4:1.2.3", "invalid IPv4 address '1.2.3'"),
    ("v=spf1 ip4:256.1.1.1", "invalid IPv4 address"),
    ("v=spf1 ip4:01.2.3.4", "invalid IPv4 address"),
    ("v=spf1 ip4:example.com", "invalid IPv4 address"),
    ("v=spf1 ip4:2001:db8::1", "invalid IPv4 address"),
    ("v=spf1 ip4:1.2.3.4/33", "bad CIDR length '/33'"),
    ("v=spf1 ip4:1.2.3.4/", "bad CIDR length '/'"),
    ("v=spf1 ip4:1.2.3.4/08", "bad CIDR length '/08'"),
    ("v=spf1 ip4:1.2.3.4/99999", "bad CIDR length"),
    ("v=spf1 ip6:1.2.3.4", "invalid IPv6 address"),
    ("v=spf1 ip6:2001:db8::g", "invalid IPv6 address"),
    ("v=spf1 ip6:fe80::1%eth0", "invalid IPv6 address"),
    ("v=spf1 ip6:2001:db8::/129", "bad CIDR length '/129'"),
    ("v=spf1 redirect=a.example redirect=b.example", "duplicate 'redirect='"),
    ("v=spf1 exp=a.example exp=b.example", "duplicate 'exp='"),
    ("v=spf1 redirect=", "'redirect=' without a domain"),
    ("v=spf1 exp=", "'exp=' without a domain"),
    ("v=spf1 redirect=localhost", "not fully qualified"),
    ("v=spf1 include:example", "not fully qualified"),
    ("v=spf1 include:example.", "not fully qualified"),
    ("v=spf1 include:example.c_m", "invalid top label 'c_m'"),
    ("v=spf1 include:example.-com", "invalid top label"),
    ("v=spf1 include:foo..example.com", "empty label"),
    ("v=spf1 include:" + "a" * 64 + ".example.com", "longer than 63"),
    ("v=spf1 include:" + "a." * 130 + "com", "longer than 253"),
    ("v=spf1 include:%{x}.example.com", "unknown macro letter 'x'"),
    ("v=spf1 include:%{c}.example.com", "only allowed in explanation"),
    ("v=spf1 exists:%{r}.example.com", "only allowed in explanation"),
    ("v=spf1 exp=%{t}.example.com", "only allowed in explanation"),
    ("v=spf1 include:%{d0}.example.com", "must be nonzero"),
    ("v=spf1 include:%{d00r}.example.com", "must be nonzero"),
    ("v=spf1 include:%{d", "unterminated macro"),
    ("v=spf1 include:%{}.example.com", "invalid macro '%{}'"),
    ("v=spf1 include:%{dx}.example.com", "invalid macro"),
    ("v=spf1 include:%{d1r!}.example.com", "invalid macro"),
    ("v=spf1 include:%x.example.com", "invalid macro '%x'"),
    ("v=spf1 include:example.com%", "'%' at the end"),
    ("v=spf1 foo=%", "'%' at the end"),
    ("v=spf1 mx:%{d}.", "not fully qualified"),
]


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_parse_invalid(text: str, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert reason in info.value.reason
    assert str(info.value)


def test_parse_error_carries_term_and_position() -> None:
    with pytest.raises(ParseError) as info:
        parse("v=spf1 mx ip4:1.2.3.4/33 -all")
    assert info.value.term == "ip4:1.2.3.4/33"
    assert info.value.position == 10
    assert "ip4:1.2.3.4/33" in str(info.value)


def test_record_properties_and_warnings() -> None:
    rec = parse("v=spf1 a ptr include:x.example.com -all mx redirect=y.example.com foo=1")
    assert rec.all is not None and rec.all.qualifier == "-"
    assert [m.name for m in rec.evaluated_mechanisms] == ["a", "ptr", "include", "all"]
    assert rec.redirect == "y.example.com"
    assert rec.effective_redirect is None
    assert rec.uses_ptr
    assert rec.dns_term_count == 3
    joined = " | ".join(rec.warnings)
    assert "never evaluated: mx" in joined
    assert "'redirect=' is ignored" in joined
    assert "unknown modifier 'foo='" in joined
    assert "'ptr'" in joined
    plain = parse("v=spf1 a mx redirect=_spf.example.com")
    assert plain.all is None and plain.effective_redirect == "_spf.example.com"
    assert plain.dns_term_count == 3
    assert plain.exp is None and plain.warnings == ()
    assert len(plain.modifiers) == 1 and len(plain.mechanisms) == 2
    assert plain.mechanisms[0].queries_dns


def test_select_spf() -> None:
    records = ["v=spf1 -all", "v=spf10", "V=SPF1", "google-site-verification=x", "v=spf1x",
               "spf1"]
    assert select_spf(records) == ["v=spf1 -all", "V=SPF1"]


# ---------------------------------------------------------------------------------------------
# Evaluation


Zone = dict[str, dict[str, list[str]]]


class FakeDns:
    """Names absent from the zone are NXDOMAIN; a type absent from a present name is NODATA."""

    def __init__(self, zone: Zone, *, fail: set[tuple[str, str]] | None = None,
                 dynamic: Callable[[str, str], list[str] | None] | None = None) -> None:
        self.zone = {name.lower(): types for name, types in zone.items()}
        self.fail = fail or set()
        self.dynamic = dynamic
        self.calls: list[tuple[str, str]] = []

    def __call__(self, name: str, rdtype: str) -> LookupAnswer:
        self.calls.append((name, rdtype))
        if (name, rdtype) in self.fail:
            raise LookupFailure("SERVFAIL")
        if self.dynamic is not None:
            records = self.dynamic(name, rdtype)
            if records is not None:
                return LookupAnswer(records)
        types = self.zone.get(name.lower())
        if types is None:
            return LookupAnswer([], nxdomain=True)
        return LookupAnswer(list(types.get(rdtype, [])))


def spf_zone(**records: str) -> Zone:
    """Zone of TXT records; keyword names use '_' for '.', '__' for a leading '_'."""
    return {name: {"TXT": [text]} for name, text in records.items()}


def host(*addresses: str) -> dict[str, list[str]]:
    return {"A": list(addresses)}


def test_gmail_style_tree() -> None:
    zone: Zone = {
        "example.com": {"TXT": ["v=spf1 include:_spf.google.com ~all", "other=text"]},
        "_spf.google.com": {"TXT": ["v=spf1 include:_netblocks.google.com "
                                    "include:_netblocks2.google.com "
                                    "include:_netblocks3.google.com ~all"]},
        "_netblocks.google.com": {"TXT": ["v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 "
                                          "ip4:66.102.0.0/20 ip4:108.177.8.0/21 ~all"]},
        "_netblocks2.google.com": {"TXT": ["v=spf1 ip6:2001:4860:4000::/36 "
                                           "ip6:2404:6800:4000::/36 ~all"]},
        "_netblocks3.google.com": {"TXT": ["v=spf1 ip4:172.217.0.0/19 ~all"]},
    }
    dns = FakeDns(zone)
    result = evaluate("Example.COM.", dns)
    assert result.ok
    assert result.domain == "example.com"
    assert result.dns_lookups == 4
    assert result.void_lookups == 0
    assert result.queries == 5
    assert result.effective_all == "~"
    assert result.all_domain == "example.com"
    assert result.tree is not None
    assert [c.domain for c in result.tree.children] == ["_spf.google.com"]
    assert len(result.tree.children[0].children) == 3
    assert result.tree.children[0].children[0].record is not None
    evidence = json.loads(json.dumps(result.to_dict()))
    assert evidence["tree"]["children"][0]["children"][2]["domain"] == "_netblocks3.google.com"


def test_microsoft_style_tree() -> None:
    zone = spf_zone(**{
        "contoso.com": "v=spf1 include:spf.protection.outlook.com -all",
        "spf.protection.outlook.com": "v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 "
                                      "ip4:52.100.0.0/14 ip4:104.47.0.0/17 "
                                      "ip6:2a01:111:f400::/48 ip6:2a01:111:f403::/49 -all",
    })
    result = evaluate("contoso.com", FakeDns(zone))
    assert result.ok and result.dns_lookups == 1 and result.effective_all == "-"


def _chain_zone(dns_terms: int) -> Zone:
    """A top record with exactly `dns_terms` DNS-querying terms, none void."""
    zone: Zone = {"mail.example.com": host("192.0.2.25"),
                  "example.com": {"MX": ["10 mail.example.com."], "A": ["192.0.2.1"]}}
    terms = ["a", "mx"]
    for i in range(dns_terms - 2):
        name = f"i{i}.example.net"
        zone[name] = {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]}
        terms.append(f"include:{name}")
    zone["example.com"]["TXT"] = ["v=spf1 " + " ".join(terms) + " -all"]
    return zone


def test_exactly_ten_lookups_pass() -> None:
    result = evaluate("example.com", FakeDns(_chain_zone(10)))
    assert result.dns_lookups == 10
    assert not result.lookup_limit_exceeded
    assert result.ok, result.problems


def test_eleven_lookups_fail() -> None:
    result = evaluate("example.com", FakeDns(_chain_zone(11)))
    assert result.dns_lookups == 11
    assert result.lookup_limit_exceeded
    assert result.problem_kinds == {"too-many-lookups"}
    assert "11 DNS-querying terms" in result.problems[0].message


def test_nested_includes_count_toward_limit() -> None:
    zone = spf_zone(**{
        "example.com": "v=spf1 include:a.example.net include:b.example.net -all",
        "a.example.net": "v=spf1 a:x.example.net a:x.example.net a:x.example.net "
                         "a:x.example.net -all",
        "b.example.net": "v=spf1 exists:x.example.net exists:x.example.net "
                         "exists:x.example.net exists:x.example.net exists:x.example.net -all",
    })
    zone["x.example.net"] = host("192.0.2.9")
    result = evaluate("example.com", FakeDns(zone))
    assert result.dns_lookups == 11
    assert "too-many-lookups" in result.problem_kinds


def test_terms_after_all_and_ignored_redirect_are_not_counted() -> None:
    zone = spf_zone(**{"example.com": "v=spf1 -all " + "a " * 15 + "redirect=x.example.net"})
    dns = FakeDns(zone)
    result = evaluate("example.com", dns)
    assert result.dns_lookups == 0
    assert dns.calls == [("example.com", "TXT")]
    assert result.effective_all == "-"


def test_void_lookups() -> None:
    zone: Zone = spf_zone(**{
        "two.example.com": "v=spf1 a:gone1.example.com mx:gone2.example.com -all",
        "three.example.com": "v=spf1 a:gone1.example.com mx:nodata.example.com "
                             "exists:gone3.example.com -all",
    })
    zone["nodata.example.com"] = {"TXT": ["hello"]}
    two = evaluate("two.example.com", FakeDns(zone))
    assert two.void_lookups == 2 and not two.void_limit_exceeded and two.ok
    three = evaluate("three.example.com", FakeDns(zone))
    assert three.void_lookups == 3 and three.void_limit_exceeded
    assert three.problem_kinds == {"too-many-void-lookups"}
    assert three.tree is not None
    notes = " ".join(three.tree.notes)
    assert "a:gone1.example.com: void (NXDOMAIN)" in notes
    assert "mx:nodata.example.com: void (no records)" in notes


def test_a_is_void_only_when_both_families_are_empty() -> None:
    zone = spf_zone(**{"example.com": "v=spf1 a:v6.example.com a:none.example.com -all"})
    zone["v6.example.com"] = {"AAAA": ["2001:db8::25"]}
    zone["none.example.com"] = {"TXT": ["x"]}
    result = evaluate("example.com", FakeDns(zone))
    assert result.void_lookups == 1
    assert result.tree is not None
    assert result.tree.notes == ("a:none.example.com: void (no address)",)


def test_include_loop() -> None:
    zone = spf_zone(**{
        "example.com": "v=spf1 include:a.example.net -all",
        "a.example.net": "v=spf1 include:b.example.net -all",
        "b.example.net": "v=spf1 include:A.example.net. -all",
    })
    result = evaluate("example.com", FakeDns(zone))
    assert "loop" in result.problem_kinds
    loop = next(p for p in result.problems if p.kind == "loop")
    assert "a.example.net -> b.example.net -> a.example.net" in loop.message


def test_self_include_and_redirect_loop() -> None:
    self_inc = evaluate("example.com", FakeDns(spf_zone(**{
        "example.com": "v=spf1 include:example.com -all"})))
    assert self_inc.problem_kinds == {"loop"}
    redirect = evaluate("example.com", FakeDns(spf_zone(**{
        "example.com": "v=spf1 redirect=r.example.com",
        "r.example.com": "v=spf1 redirect=example.com"})))
    assert "loop" in redirect.problem_kinds
    assert redirect.effective_all is None


def test_diamond_is_not_a_loop() -> None:
    zone = spf_zone(**{
        "example.com": "v=spf1 include:a.example.net include:b.example.net -all",
        "a.example.net": "v=spf1 include:c.example.net -all",
        "b.example.net": "v=spf1 include:c.example.net -all",
        "c.example.net": "v=spf1 ip4:192.0.2.0/24 -all",
    })
    result = evaluate("example.com", FakeDns(zone))
    assert result.ok and result.dns_lookups == 4


def test_redirect_without_all_uses_target_all() -> None:
    zone = spf_zone(**{
        "example.com": "v=spf1 mx redirect=_spf.example.net",
        "_spf.example.net": "v=spf1 ip4:192.0.2.0/24 -all",
    })
    zone["example.com"]["MX"] = ["10 mx.example.com."]
    result = evaluate("example.com", FakeDns(zone))
    assert result.ok
    assert result.effective_all == "-"
    assert result.all_domain == "_spf.example.net"
    assert result.dns_lookups == 2
    assert result.tree is not None and result.tree.children[0].via == "redirect"


def test_redirect_chain_and_missing_all() -> None:
    zone = spf_zone(**{
        "example.com": "v=spf1 redirect=a.example.net",
        "a.example.net": "v=spf1 redirect=b.example.net",
        "b.example.net": "v=spf1 ip4:192.0.2.1",
    })
    result = evaluate("example.com", FakeDns(zone))
    assert result.ok and result.effective_all is None and result.dns_lookups == 2


def test_redirect_ignored_when_all_present() -> None:
    zone = spf_zone(**{"example.com": "v=spf1 ?all redirect=nowhere.example.net"})
    dns = FakeDns(zone)
    result = evaluate("example.com", dns)
    assert result.effective_all == "?"
    assert ("nowhere.example.net", "TXT") not in dns.calls


def test_no_all_and_no_redirect() -> None:
    result = evaluate("example.com", FakeDns(spf_zone(**{"example.com": "v=spf1 ip4:192.0.2.1"})))
    assert result.effective_all is None and result.all_domain is None and result.ok


@pytest.mark.parametrize(
    ("target_records", "nx", "fragment", "void"),
    [
        (None, True, "NXDOMAIN at gone.example.net", 1),
        ([], False, "no SPF record at gone.example.net", 1),
        (["not spf"], False, "no SPF record", 0),
        (["v=spf1 -all", "v=spf1 ~all"], False, "2 SPF records", 0),
        (["v=spf1 ip4:1.2.3.4/40 -all"], False, "syntax error: bad CIDR length", 0),
    ],
)
def test_unresolvable_include(target_records: list[str] | None, nx: bool, fragment: str,
                              void: int) -> None:
    zone = spf_zone(**{"example.com": "v=spf1 include:gone.example.net -all"})
    if not nx:
        zone["gone.example.net"] = {"TXT": target_records or []}
    result = evaluate("example.com", FakeDns(zone))
    assert result.problem_kinds == {"unresolvable-include"}
    assert fragment in result.problems[0].message
    assert result.void_lookups == void
    assert result.tree is not None and result.tree.children[0].error is not None


def test_unresolvable_redirect() -> None:
    result = evaluate("example.com", FakeDns(spf_zone(**{
        "example.com": "v=spf1 redirect=gone.example.net"})))
    assert result.problem_kinds == {"unresolvable-redirect"}
    assert result.effective_all is None


@pytest.mark.parametrize(
    ("records", "kind"),
    [
        (None, "no-record"),
        (["google-site-verification=abc"], "no-record"),
        (["v=spf1 -all", "v=spf1 ~all"], "multiple-records"),
        (["v=spf1 ip4:bad -all"], "syntax"),
    ],
)
def test_top_level_problems(records: list[str] | None, kind: str) -> None:
    zone: Zone = {} if records is None else {"example.com": {"TXT": records}}
    result = evaluate("example.com", FakeDns(zone))
    assert result.problem_kinds == {kind}
    assert result.record is None
    assert result.effective_all is None
    assert result.void_lookups == 0


def test_lookup_failure_is_an_error_not_a_crash() -> None:
    zone = spf_zone(**{
        "example.com": "v=spf1 include:a.example.net include:b.example.net -all",
        "a.example.net": "v=spf1 -all",
        "b.example.net": "v=spf1 -all",
    })
    dns = FakeDns(zone, fail={("a.example.net", "TXT")})
    result = evaluate("example.com", dns)
    assert result.error is not None and "a.example.net" in result.error
    assert "SERVFAIL" in result.error
    assert not result.ok
    assert ("b.example.net", "TXT") not in dns.calls  # stopped at the failure
    top_failure = evaluate("example.com", FakeDns(zone, fail={("example.com", "TXT")}))
    assert top_failure.error is not None and top_failure.record is None
    assert top_failure.problems == ()


def test_lookup_failure_in_a_and_mx() -> None:
    zone = spf_zone(**{"example.com": "v=spf1 a mx -all"})
    result = evaluate("example.com", FakeDns(zone, fail={("example.com", "AAAA")}))
    assert result.error is not None and "AAAA" in result.error
    result = evaluate("example.com", FakeDns(zone, fail={("example.com", "MX")}))
    assert result.error is not None and "MX" in result.error


def test_mx_with_more_than_ten_names() -> None:
    zone = spf_zone(**{"example.com": "v=spf1 mx -all", "ten.example.com": "v=spf1 mx -all"})
    zone["example.com"]["MX"] = [f"10 mx{i}.example.com." for i in range(11)]
    zone["ten.example.com"]["MX"] = [f"mx{i}.example.com" for i in range(10)]
    result = evaluate("example.com", FakeDns(zone))
    assert result.problem_kinds == {"mx-too-many-names"}
    assert "11 MX names" in result.problems[0].message
    assert evaluate("ten.example.com", FakeDns(zone)).ok


def test_ptr_is_flagged_and_counted() -> None:
    zone = spf_zone(**{"example.com": "v=spf1 include:p.example.net -all",
                       "p.example.net": "v=spf1 ptr -all"})
    result = evaluate("example.com", FakeDns(zone))
    assert result.uses_ptr and result.dns_lookups == 2 and result.ok


def test_macros() -> None:
    zone = spf_zone(**{
        "example.com": "v=spf1 include:%{i}._spf.example.com exists:%{l}.x.example.com "
                       "a:%{d} mx:%{d2} include:_s.%{d} redirect=%{s}.example.net",
        "_s.example.com": "v=spf1 ip4:192.0.2.0/24",
    })
    zone["example.com"]["A"] = ["192.0.2.1"]
    zone["example.com"]["MX"] = ["10 mail.example.com"]
    dns = FakeDns(zone)
    result = evaluate("example.com", dns)
    assert result.ok
    assert result.dns_lookups == 6  # 5 mechanisms + redirect, macro ones counted too
    assert ("example.com", "A") in dns.calls and ("example.com", "MX") in dns.calls
    assert ("_s.example.com", "TXT") in dns.calls
    assert result.tree is not None
    notes = " ".join(result.tree.notes)
    assert "include:%{i}._spf.example.com: macro needs sender data" in notes
    assert "redirect=%{s}.example.net: macro needs sender data" in notes


def test_macro_escapes_and_long_expansions() -> None:
    label = "l" * 63
    four = f"{label}.{label}.{label}.{label}"
    zone = spf_zone(**{"example.com": "v=spf1 include:%%x%_y%-.example.com "
                                      f"include:{four}.%{{d}}.x.example -all"})
    dns = FakeDns(zone)
    result = evaluate("example.com", dns)
    assert result.tree is not None
    assert "include:%%x%_y%-.example.com: expands to an invalid name, not followed" in \
        result.tree.notes
    # RFC 7208 7.3: an expansion over 253 characters loses labels from the left.
    queried = [name for name, _ in dns.calls if name.endswith(".x.example")]
    assert queried == [f"{label}.{label}.{label}.example.com.x.example"]


def test_query_cap() -> None:
    zone = spf_zone(**{f"n{i}.example.net": "v=spf1 -all" for i in range(60)})
    zone["example.com"] = {"TXT": ["v=spf1 " + " ".join(f"include:n{i}.example.net"
                                                        for i in range(60)) + " -all"]}
    dns = FakeDns(zone)
    result = evaluate("example.com", dns)
    assert result.truncated and result.queries == 50 and len(dns.calls) == 50
    assert "stopped after 50 DNS queries" in next(
        p.message for p in result.problems if p.kind == "truncated")
    assert result.dns_lookups == 50  # counted up to where it stopped
    assert "too-many-lookups" in result.problem_kinds


def test_macro_transformers() -> None:
    zone = spf_zone(**{"a.b.example.com": "v=spf1 include:%{d2r}.x.example.net "
                                          "include:%{D3}.y.example.net -all"})
    dns = FakeDns(zone)
    evaluate("a.b.example.com", dns)
    assert ("b.a.x.example.net", "TXT") in dns.calls
    assert ("b.example.com.y.example.net", "TXT") in dns.calls


def test_recursion_bomb_finishes_fast() -> None:
    def bomb(name: str, rdtype: str) -> list[str] | None:
        if rdtype != "TXT" or not name.endswith(".bomb.example"):
            return None
        includes = " ".join(f"include:n{i}.{name}" for i in range(10))
        return [f"v=spf1 {includes} -all"]

    dns = FakeDns({}, dynamic=bomb)
    start = time.monotonic()
    result = evaluate("root.bomb.example", dns)
    assert time.monotonic() - start < 2
    assert result.truncated
    assert result.queries <= 50
    assert len(dns.calls) <= 50
    assert "truncated" in result.problem_kinds
    assert "too-many-lookups" in result.problem_kinds
    assert not result.ok


def test_depth_cap() -> None:
    def chain(name: str, rdtype: str) -> list[str] | None:
        if rdtype != "TXT":
            return None
        return [f"v=spf1 include:x.{name} -all"] if len(name) < 200 else None

    result = evaluate("d.example", FakeDns({}, dynamic=chain), max_queries=1000, max_depth=5)
    assert result.truncated and result.queries == 6


def test_evaluate_rejects_bad_domain() -> None:
    with pytest.raises(ParseError):
        evaluate("not a domain", FakeDns({}))
    with pytest.raises(ParseError):
        evaluate("", FakeDns({}))
