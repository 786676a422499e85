"""Store path names, closure differences and version comparison (pure functions)."""

from __future__ import annotations

import pytest

from watchtower.inventory.storepaths import closure_diff, package_of, parse_name, store_name
from watchtower.inventory.versions import compare, normalize, same

H = "0123456789abcdfghijklmnpqrsvwxyz"


@pytest.mark.parametrize(("name", "expected"), [
    ("matrix-synapse-1.120.0", ("matrix-synapse", "1.120.0")),
    ("linux-6.6.1", ("linux", "6.6.1")),
    ("linux-6.6.1-modules", ("linux", "6.6.1")),
    ("openssl-3.0.13-bin", ("openssl", "3.0.13")),
    ("nixos-system-web1-24.05.2", ("nixos-system-web1", "24.05.2")),
    ("system-path", ("system-path", "")),
    ("etc", ("etc", "")),
    ("python3.11-requests-2.31.0", ("python3.11-requests", "2.31.0")),
    ("glibc-2.39-52", ("glibc", "2.39-52")),
])
def test_parse_name_follows_parseDrvName(name: str, expected: tuple[str, str]) -> None:
    assert parse_name(name) == expected


def test_store_name_of_paths_inside_an_item() -> None:
    assert store_name(f"/tmp/x/store/{H}-linux-6.6.1/bzImage") == "linux-6.6.1"
    assert store_name(f"/nix/store/{H}-etc") == "etc"
    assert package_of(f"/nix/store/{H}-mastodon-4.3.2").version == "4.3.2"


def test_closure_diff_added_removed_changed() -> None:
    old = [f"/nix/store/{H}-mastodon-4.3.1", f"/nix/store/{H}-curl-8.5.0",
           f"/nix/store/{H}-etc", f"/nix/store/{H}-openssl-3.0.13"]
    new = [f"/nix/store/{H}-mastodon-4.3.2", f"/nix/store/{H}-pixelfed-0.12.4",
           f"/nix/store/{H}-etc", f"/nix/store/{H}-openssl-3.0.13",
           f"/nix/store/{H}-foo.drv"]
    diff = closure_diff(old, new)
    assert diff == {
        "added": [{"name": "pixelfed", "version": "0.12.4"}],
        "removed": [{"name": "curl", "version": "8.5.0"}],
        "changed": [{"name": "mastodon", "old": "4.3.1", "new": "4.3.2"}],
    }


@pytest.mark.parametrize(("a", "b", "result"), [
    ("4.3.2", "4.3.10", -1),
    ("1.120.0", "1.99.0", 1),
    ("v1.1.0", "1.1.0", 0),
    ("4.3.2+glitch", "4.3.2", 0),
    ("1.2.0rc1", "1.2.0", -1),
    ("1.2.0-beta.2", "1.2.0-rc.1", -1),
    ("1.2", "1.2.1", -1),
    ("6.3.0", "6.3.0", 0),
])
def test_compare(a: str, b: str, result: int) -> None:
    assert compare(a, b) == result
    assert compare(b, a) == -result


def test_normalize_and_same() -> None:
    assert normalize(" v2.0.1+build.5 ") == "2.0.1"
    assert normalize("version") == "version"  # only v<digit> loses its v
    assert same("V1.0.0", "1.0.0")
