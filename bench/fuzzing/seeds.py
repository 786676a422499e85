"""Real documents for the fuzz targets, read out of the test fixtures.

The judgement fixtures (`tests/fixtures/checks/<id>.json`) hold recorded facts: the JSON answers
of NodeInfo, WebFinger, Matrix and Garage servers, DNS TXT strings, MTA-STS policies. Starting
from them, the fuzzer begins with the deep paths already reached instead of rediscovering the
grammar of a NodeInfo document byte by byte.
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


@functools.cache
def cases(check_id: str) -> tuple[dict[str, Any], ...]:
    return tuple(json.loads((FIXTURES / "checks" / f"{check_id}.json").read_text("utf-8")))


def _walk(value: Any) -> Iterator[tuple[str | None, Any]]:
    """Every (member name, value) pair below `value`; list items come with the name None."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield name, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield None, item
            yield from _walk(item)


def _unique(values: Iterator[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(json.dumps(value, sort_keys=True), value)
    return list(seen.values())


def members(check_ids: tuple[str, ...], name: str) -> list[Any]:
    """Every value of member `name` anywhere in the facts of these checks' fixtures."""
    return _unique(v for cid in check_ids for case in cases(cid)
                   for k, v in _walk(case["facts"]) if k == name)


def strings(check_ids: tuple[str, ...], keep: Callable[[str], bool]) -> list[str]:
    """Every string in these checks' facts that `keep` accepts."""
    return _unique(v for cid in check_ids for case in cases(cid)
                   for _, v in _walk(case["facts"]) if isinstance(v, str) and keep(v))


@functools.cache
def facts(check_id: str) -> list[dict[str, Any]]:
    return [case["facts"] for case in cases(check_id)]


@functools.cache
def feed_documents() -> list[Any]:
    return [json.loads((FIXTURES / "feeds" / name).read_text("utf-8"))
            for name in ("osv.json", "vulnix.json")]


@functools.cache
def whitelist_documents() -> list[Any]:
    return [tomllib.loads((FIXTURES / "feeds" / "whitelist.toml").read_text("utf-8"))]


@functools.cache
def fleet_texts() -> list[str]:
    return [(ROOT / "watchtower" / "example_fleet.toml").read_text("utf-8")]
