"""The DNS seam against a real (in-process) authoritative server on loopback."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.unit.net.helpers import big_zone, dns_server, silent_udp
from watchtower.net.dns import DnsError, Resolver, Server


@pytest.fixture(scope="module")
def server():  # type: ignore[no-untyped-def]
    with dns_server({"example.test.": big_zone()}) as srv:
        yield srv


def resolver(server, **kw) -> Resolver:  # type: ignore[no-untyped-def]
    return Resolver([Server("127.0.0.1", server.port)], timeout=2, **kw)


def test_answers_nxdomain_and_nodata(server) -> None:  # type: ignore[no-untyped-def]
    r = resolver(server)
    assert r.resolve("www.example.test", "A").records == ["127.0.0.1"]
    nx = r.resolve("nope.example.test", "A")
    assert nx.nxdomain and nx.records == []
    nodata = r.resolve("www.example.test", "MX")
    assert nodata.rcode == "NOERROR" and nodata.records == []


def test_txt_strings_are_joined(server) -> None:  # type: ignore[no-untyped-def]
    assert resolver(server).resolve("long.example.test", "TXT").texts == ["x" * 500]


def test_cname_chain_is_followed_and_loops_are_errors(server) -> None:  # type: ignore[no-untyped-def]
    r = resolver(server)
    ans = r.resolve("alias.example.test", "A")
    assert ans.records == ["127.0.0.1"] and ans.cname_chain == ("www.example.test.",)
    with pytest.raises(DnsError) as err:
        r.resolve("loop1.example.test", "A")
    assert err.value.kind == "cname-loop"


def test_truncated_udp_falls_back_to_tcp(server) -> None:  # type: ignore[no-untyped-def]
    ans = resolver(server).resolve("big.example.test", "TXT")
    assert len(ans.records) == 20


def test_each_question_is_sent_once_per_sweep(server) -> None:  # type: ignore[no-untyped-def]
    r = resolver(server)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda _: r.resolve("www.example.test", "A"), range(64)))
    assert r.queries_sent == 1
    assert r.cache_stats["hits"] == 63


def test_refused_outside_zones_is_an_error(server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DnsError) as err:
        resolver(server).resolve("example.org", "A")
    assert "REFUSED" in err.value.reason


def test_direct_question_reports_authority(server) -> None:  # type: ignore[no-untyped-def]
    reply = resolver(server).ask(f"127.0.0.1:{server.port}", "example.test", "SOA")
    assert reply.aa and reply.rcode == "NOERROR" and reply.rrset("SOA") is not None


def test_server_that_never_answers_times_out_once() -> None:
    with silent_udp() as port:
        r = Resolver([Server("127.0.0.1", port)], timeout=0.3)
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(DnsError) as err:
                r.resolve("www.example.test", "A")
            assert err.value.kind == "timeout"
        assert time.monotonic() - started < 1.5  # the failure is cached for the sweep
        assert r.queries_sent == 1


def test_next_server_is_tried(server) -> None:  # type: ignore[no-untyped-def]
    with silent_udp() as port:
        r = Resolver([Server("127.0.0.1", port), Server("127.0.0.1", server.port)], timeout=0.3)
        assert r.resolve("www.example.test", "A").records == ["127.0.0.1"]


def test_invalid_name_is_an_input_error(server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DnsError) as err:
        resolver(server).resolve("a" * 70 + ".example.test", "A")
    assert err.value.kind == "input"


def test_server_parse() -> None:
    assert Server.parse("127.0.0.1:5300") == Server("127.0.0.1", 5300)
    assert Server.parse("[::1]:53") == Server("::1", 53)
    assert Server.parse("::1") == Server("::1", 53)
    assert Server.parse("ns.example", 5353) == Server("ns.example", 5353)
