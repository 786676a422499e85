"""Validating what can be validated of a fleet file that has shape problems.

Pydantic reports every shape problem of a document at once (an unknown table, a bad value, a
missing key), but the rules that span entries (duplicate names, dangling references, unknown
check ids, secret files that do not exist) need a Fleet. So that one pass of `watchtower
validate` names them all, the places pydantic refused are taken out of a copy of the document
(an unknown or bad key is dropped, so its default applies; an entry that cannot stand without
what is missing is dropped whole) and the rest is validated again, a few rounds at most. The
rules then run on what is left; the problems they find under a place that was taken out are
consequences, not news, and are left out.

Dropping an entry shifts the index of the entries after it: `Pruned.original` maps a place in
what is left back to the place in the file, so every problem names the file's own index.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from watchtower.config.fleet import Fleet
from watchtower.config.lines import Path

ROUNDS = 4
_GONE = object()


@dataclass
class Pruned:
    """The outcome: the Fleet of what was left (None when nothing could be made valid), the
    places taken out (in the file's indices) and, per round, the old indices of the entries
    each shortened array kept."""

    fleet: Fleet | None = None
    removed: list[Path] = field(default_factory=list)
    kept: list[dict[Path, list[int]]] = field(default_factory=list)

    def original(self, path: Path) -> Path:
        """`path` in what was left -> the same place in the file."""
        for kept in reversed(self.kept):
            out: list[str | int] = []
            for part in path:
                old = kept.get(tuple(out))
                if isinstance(part, int) and old is not None and part < len(old):
                    part = old[part]
                out.append(part)
            path = tuple(out)
        return path

    def is_consequence(self, path: Path) -> bool:
        """Whether `path` (in the file's indices) lies under a place that was taken out."""
        return any(path[:len(gone)] == gone for gone in self.removed)


def validate_rest(data: dict[str, Any], errors: list[Any], parts_of: Any) -> Pruned:
    """Take out what `errors` (pydantic's, of `data`) point at and validate the rest, again
    and again; `parts_of(loc)` turns a pydantic location into a Path of the document."""
    try:
        return _rounds(copy.deepcopy(data), errors, parts_of)
    except RecursionError:  # nested near tomllib's own limit: the shape problems must do
        return Pruned()


def _rounds(doc: dict[str, Any], errors: list[Any], parts_of: Any) -> Pruned:
    pruned = Pruned()
    for _ in range(ROUNDS):
        removed = [_take_out(doc, e, parts_of) for e in errors]
        if any(r is None for r in removed):  # a problem of the whole file: nothing to narrow
            return pruned
        pruned.removed += [pruned.original(r) for r in removed if r is not None]
        pruned.kept.append(_compact(doc, ()))
        try:
            pruned.fleet = Fleet.model_validate(doc)
        except ValidationError as exc:
            errors = exc.errors()
            continue
        return pruned
    return pruned


def _take_out(doc: Any, error: Any, parts_of: Any) -> Path | None:
    """Remove the place `error` points at (its entry for a missing key); that place."""
    path: Path = parts_of(tuple(error["loc"]))
    if error["type"] == "missing":
        path = path[:-1]
    if not path:
        return None
    node = doc
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return path  # already inside something taken out
    last = path[-1]
    if isinstance(node, dict) and last in node:
        del node[last]
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = _GONE
    return path


def _compact(node: Any, path: Path) -> dict[Path, list[int]]:
    """Drop the entries marked gone, depth first; array path -> old indices of those kept."""
    kept: dict[Path, list[int]] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            kept |= _compact(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if value is not _GONE:
                kept |= _compact(value, (*path, i))
        if any(v is _GONE for v in node):
            kept[path] = [i for i, v in enumerate(node) if v is not _GONE]
            node[:] = [v for v in node if v is not _GONE]
    return kept
