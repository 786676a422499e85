"""The NodeInfo validator (rules written as code) agrees with the published JSON schemas on the
published examples and on documents broken one rule at a time."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from watchtower.parsers import nodeinfo

VERSIONS = ("2.0", "2.1", "2.2")


def _mutations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []

    def m(name: str, fn: Any) -> None:
        d = copy.deepcopy(doc)
        fn(d)
        out.append((name, d))

    m("no usage", lambda d: d.pop("usage"))
    m("numeric version", lambda d: d["software"].__setitem__("version", 4))
    m("bad name", lambda d: d["software"].__setitem__("name", "Mastodon!"))
    m("extra top member", lambda d: d.__setitem__("extra", 1))
    m("unknown protocol", lambda d: d.__setitem__("protocols", ["gopher"]))
    m("no protocols", lambda d: d.__setitem__("protocols", []))
    m("negative users", lambda d: d["usage"]["users"].__setitem__("total", -1))
    m("float users", lambda d: d["usage"]["users"].__setitem__("total", 1.5))
    m("string registrations", lambda d: d.__setitem__("openRegistrations", "yes"))
    m("metadata array", lambda d: d.__setitem__("metadata", []))
    m("wrong version", lambda d: d.__setitem__("version", "1.0"))
    m("services missing outbound", lambda d: d["services"].pop("outbound"))
    m("unknown inbound", lambda d: d["services"].__setitem__("inbound", ["fax"]))
    m("repository added", lambda d: d["software"].__setitem__("repository", "https://r"))
    m("activeWeek added", lambda d: d["usage"]["users"].__setitem__("activeWeek", 3))
    m("nostr protocol", lambda d: d.__setitem__("protocols", ["nostr"]))
    m("not an object", lambda d: d.clear())
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_validator_agrees_with_published_schema(shared: Path, version: str) -> None:
    specs = shared / "specs" / "nodeinfo"
    schema = json.loads((specs / f"schema-{version}.json").read_text())
    example = json.loads((specs / f"example-{version}.json").read_text())
    validator = jsonschema.Draft4Validator(schema)
    assert validator.is_valid(example)
    assert nodeinfo.validate(example, version).problems == ()
    for name, doc in _mutations(example):
        ours = nodeinfo.validate(doc, version).problems
        theirs = list(validator.iter_errors(doc))
        assert bool(ours) == bool(theirs), (version, name, ours, [e.message for e in theirs])


def test_discovery_picks_the_highest_known_schema() -> None:
    rel = nodeinfo.REL_PREFIX
    links = nodeinfo.parse_discovery({"links": [
        {"rel": rel + "2.0", "href": "a"}, {"rel": rel + "2.1", "href": "b"},
        {"rel": rel + "9.9", "href": "c"}, {"rel": "other", "href": "d"}, "junk"]})
    assert nodeinfo.choose_schema(links) == ("2.1", "b")
    assert nodeinfo.choose_schema([]) is None
