"""Store paths -> package names and versions, and the difference between two closures.

Nix names a store path `<hash>-<name>`, and nixpkgs' convention (`builtins.parseDrvName`) splits
`<name>` at the first `-` that is followed by a character that is not a letter: `matrix-synapse-
1.120.0` is `matrix-synapse` version `1.120.0`. A trailing output name (`-bin`, `-lib`, ...) is
not part of the version. Paths whose name has no version (`etc`, `system-path`) keep an empty one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

HASH_RE = re.compile(r"^[0-9a-df-np-sv-z]{32}-")  # nix32 alphabet (no e, o, t, u)
OUTPUTS = frozenset({"bin", "lib", "dev", "out", "man", "doc", "info", "debug", "static",
                     "data", "devdoc", "python", "modules", "tools", "sbin", "env"})


@dataclass(frozen=True, slots=True, order=True)
class Package:
    """One store path of a closure as a name and a version ("" when it has none)."""

    name: str
    version: str
    path: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "path": self.path}


def store_name(path: str) -> str:
    """`/nix/store/<hash>-name[/sub/path]` -> `name`: the store item a path lies in.

    Works for any store directory (a test store too); a path with no `<hash>-` component gives
    its last component.
    """
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if HASH_RE.match(part):
            return HASH_RE.sub("", part, count=1)
    return parts[-1] if parts else ""


def parse_name(name: str) -> tuple[str, str]:
    """Split a derivation name into (name, version) the way `builtins.parseDrvName` does."""
    for i, ch in enumerate(name):
        if ch == "-" and i + 1 < len(name) and not name[i + 1].isalpha():
            version = name[i + 1:]
            head, sep, tail = version.rpartition("-")
            if sep and tail in OUTPUTS:
                version = head
            return name[:i], version
    return name, ""


def package_of(path: str) -> Package:
    name, version = parse_name(store_name(path))
    return Package(name, version, path)


def packages(paths: Iterable[str]) -> list[Package]:
    """The closure as packages, sorted by name then version; .drv files are left out."""
    return sorted(package_of(p) for p in paths if p.strip() and not p.endswith(".drv"))


def versions_by_name(pkgs: Iterable[Package]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for p in pkgs:
        out.setdefault(p.name, set()).add(p.version)
    return out


def closure_diff(old: Iterable[str], new: Iterable[str]) -> dict[str, Any]:
    """What changes going from closure `old` to closure `new`, as structured JSON.

    By package name: `added` (only in new), `removed` (only in old), `changed` (in both with a
    different set of versions, old -> new). Like `nix store diff-closures`, a rebuild with the
    same version is not a change of version and is not listed.
    """
    before = versions_by_name(packages(old))
    after = versions_by_name(packages(new))

    def fmt(versions: set[str]) -> str:
        return ", ".join(sorted(v or "(none)" for v in versions))

    added = [{"name": n, "version": fmt(after[n])} for n in sorted(after.keys() - before.keys())]
    removed = [{"name": n, "version": fmt(before[n])}
               for n in sorted(before.keys() - after.keys())]
    changed = [{"name": n, "old": fmt(before[n]), "new": fmt(after[n])}
               for n in sorted(before.keys() & after.keys()) if before[n] != after[n]]
    return {"added": added, "removed": removed, "changed": changed}


def diff_size(diff: dict[str, Any]) -> int:
    return len(diff.get("added", [])) + len(diff.get("removed", [])) + len(
        diff.get("changed", []))
