"""JRD/host-meta and Matrix parsers on good and hostile input."""

from __future__ import annotations

import pytest

from watchtower.parsers import ParseError
from watchtower.parsers.jrd import parse_host_meta, parse_jrd
from watchtower.parsers.matrix import check_server_keys, parse_server_name


def test_jrd_actor_href_and_shapes() -> None:
    jrd = parse_jrd({"subject": "acct:a@b", "links": [
        {"rel": "self", "type": "application/activity+json", "href": "https://b/u/a"}]})
    assert jrd.actor_href() == "https://b/u/a"
    for bad in ([], {"links": "x"}, {"links": [{"href": "x"}]}, {"subject": 3}):
        with pytest.raises(ParseError):
            parse_jrd(bad)


def test_host_meta_refuses_entities() -> None:
    with pytest.raises(ParseError):
        parse_host_meta(b'<!DOCTYPE lol [<!ENTITY a "aaaa">]><XRD>&a;</XRD>')
    doc = parse_host_meta(b'<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">'
                          b'<Link rel="lrdd" template="https://x/{uri}"/></XRD>')
    assert doc.link("lrdd") is not None


@pytest.mark.parametrize(("text", "host", "port", "is_ip"), [
    ("example.org", "example.org", None, False), ("Example.org:8448", "example.org", 8448, False),
    ("1.2.3.4:80", "1.2.3.4", 80, True), ("[::1]:8448", "::1", 8448, True)])
def test_server_names(text: str, host: str, port: int | None, is_ip: bool) -> None:
    name = parse_server_name(text)
    assert (name.host, name.port, name.is_ip) == (host, port, is_ip)


@pytest.mark.parametrize("text", ["", "a b", "x:0", "x:99999", "[::1", "[zz]:1", "x:port"])
def test_bad_server_names(text: str) -> None:
    with pytest.raises(ParseError):
        parse_server_name(text)


def test_key_report_on_garbage_never_raises() -> None:
    assert check_server_keys("x").problems
    report = check_server_keys({"server_name": "a", "valid_until_ts": 1,
                                "verify_keys": {"ed25519:x": {"key": "!!notbase64"}},
                                "signatures": {"a": {"ed25519:x": "zz"}}})
    assert "ed25519:x" in report.bad_signatures
