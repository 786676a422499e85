"""Zones kept as code by octoDNS: where their YAML is, what it declares, and edits to it.

A provider that manages a zone with octoDNS keeps the truth in a git repository: an octoDNS
config file naming the zone's sources (a `YamlProvider` directory holding `<zone>.yaml`) and
targets (the PowerDNS API). Fixing such a zone through the DNS API directly is undone by the next
`octodns-sync`, so watchtower reads and changes the YAML instead:

- `managed` resolves the fleet file's `[[zones]] octodns` (inline, or a named `[[octodns]]`);
- `source` finds the zone's YAML file from the octoDNS config, and `spec_problems` says, for
  `watchtower validate`, what in that declaration does not fit the config on this machine;
- `rrsets` reads the YAML through octoDNS's own loader and record classes (so its rules on
  key order, TTL defaults and escaped semicolons hold) into the RRset shape `plan.plan_zone`
  compares with the declared records;
- `edit` applies RRset changes to the YAML text with ruamel.yaml's round-trip mode, so the
  operator's comments, key order, quoting and indentation survive, and a new key lands where
  octoDNS's order rule (natural sort, or simple) wants it.
The git side is `gitrepo`; asking octoDNS what it would change on the server is
`watchtower.net.octodns`.
"""

from __future__ import annotations

import io
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchtower.config import Fleet, OctoDnsZone, Zone
from watchtower.dnsdecl.export import octodns_value, relative
from watchtower.dnsdecl.records import Record, absolute
from watchtower.errors import ProbeError
from watchtower.net.octodns import YAML_PROVIDERS
from watchtower.probe.registry import register_validator

#: Types octoDNS writes with a single `value` (never `values`).
SINGLE_VALUE = ("CNAME", "ALIAS", "DNAME", "PTR")


class Refused(ProbeError):
    """A change to the repository is refused: the reason is for the operator, nothing changed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, kind="refused")


@dataclass(frozen=True)
class OctoZone:
    """One octoDNS-managed zone, resolved: paths absolute, the zone name as octoDNS spells it."""

    zone: str
    name: str
    config: Path
    repo: Path
    target: str
    mode: str
    branch: str
    timeout: float


@dataclass(frozen=True)
class Source:
    """The zone's YAML file and the YamlProvider options that change how it is read."""

    path: Path
    default_ttl: int = 3600
    escaped_semicolons: bool = True
    enforce_order: bool = True
    order_mode: str = "natural"

    def relpath(self, repo: Path) -> str:
        return os.path.relpath(self.path, repo)


def spec_of(fleet: Fleet, zone: Zone) -> OctoDnsZone | None:
    """The zone's octoDNS declaration, a reference resolved (None: not octoDNS-managed)."""
    if isinstance(zone.octodns, str):
        return next((o for o in fleet.octodns if o.name == zone.octodns), None)
    return zone.octodns


def managed(fleet: Fleet, zone: Zone) -> OctoZone | None:
    spec = spec_of(fleet, zone)
    if spec is None:
        return None
    return OctoZone(zone.name, absolute(spec.zone or zone.name), Path(spec.config),
                    Path(spec.repo), spec.target, spec.mode, spec.branch, spec.timeout)


def _load_config(path: Path) -> dict[str, Any]:
    from octodns.yaml import safe_load

    try:
        with path.open() as fh:
            data = safe_load(fh, enforce_order=False)
    except OSError as exc:
        raise ProbeError(f"config: cannot read {path} ({exc.strerror})", kind="input") from None
    except Exception as exc:  # yaml.YAMLError, a bad !include
        raise ProbeError(f"config: {path} is not a valid octoDNS config ({exc})",
                         kind="input") from None
    if not isinstance(data, dict):
        raise ProbeError(f"config: {path} is not a valid octoDNS config", kind="input")
    return data


def _source(config: Path, repo: Path, name: str, target: str) -> Source:
    """The YAML source of zone `name` in the octoDNS config; ProbeError names key and why."""
    data = _load_config(config)
    zones = data.get("zones") or {}
    providers = data.get("providers") or {}
    zone = zones.get(name)
    if not isinstance(zone, dict):
        raise ProbeError(f"zone: {name!r} is not a zone in {config}", kind="input")
    if target not in providers:
        raise ProbeError(f"target: {target!r} is not a provider in {config}", kind="input")
    if target not in (zone.get("targets") or []):
        raise ProbeError(f"target: {target!r} is not a target of zone {name} in {config}",
                         kind="input")
    for source in zone.get("sources") or []:
        options = providers.get(source) or {}
        if options.get("class") not in YAML_PROVIDERS:
            continue
        if options.get("split_extension"):
            raise ProbeError(f"config: the YamlProvider {source!r} splits zones into "
                             "directories (split_extension); only one file per zone is "
                             "supported", kind="input")
        directory = Path(str(options.get("directory", ".")))
        folder = directory if directory.is_absolute() else repo / directory
        path = (folder / f"{name}yaml").resolve()
        if not path.is_relative_to(repo.resolve()):
            raise ProbeError(f"repo: the zone file {path} is outside the work tree {repo}",
                             kind="input")
        return Source(path, int(options.get("default_ttl", 3600)),
                      options.get("escaped_semicolons", True) is not False,
                      options.get("enforce_order", True) is not False,
                      str(options.get("order_mode", "natural")))
    raise ProbeError(f"config: zone {name} has no YamlProvider among its sources in {config}",
                     kind="input")


def source(octo: OctoZone) -> Source:
    return _source(octo.config, octo.repo, octo.name, octo.target)


@register_validator
def environment_problems(fleet: Fleet) -> list[str]:
    """For every octoDNS-managed zone: does its declaration fit this machine (a git work tree,
    an octoDNS config naming the zone and target, the zone's YAML file)?"""
    problems: list[str] = []
    for i, zone in enumerate(fleet.zones):
        spec = spec_of(fleet, zone)
        if spec is None:
            continue
        key = f"zones[{i}].octodns"
        if isinstance(zone.octodns, str):
            index = next(j for j, t in enumerate(fleet.octodns) if t.name == zone.octodns)
            key = f"octodns[{index}] (zone {zone.name})"
        problems += [f"{key}.{problem}" for problem in spec_problems(spec, zone.name)]
    return problems


def spec_problems(spec: OctoDnsZone, zone: str) -> list[str]:
    """What in a zone's octoDNS declaration does not fit this machine (`key: why`)."""
    repo = Path(spec.repo)
    if not (repo / ".git").exists():
        return [f"repo: {repo} is not a git work tree"]
    try:
        found = _source(Path(spec.config), repo, absolute(spec.zone or zone), spec.target)
    except ProbeError as exc:
        return [exc.reason]
    if not found.path.is_file():
        return [f"config: the zone file {found.path} does not exist"]
    return []


# -- reading ----------------------------------------------------------------------------------


def yaml_problem(exc: Exception, path: str) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{path}: not valid octoDNS YAML{where} ({problem})"


def rrsets(text: str, name: str, src: Source, label: str = "zone file") -> list[dict[str, Any]]:
    """The zone's records as octoDNS reads them, in the PowerDNS API's RRset shape.

    Raises `Refused` when the YAML does not load (syntax, key order, an invalid record)."""
    from octodns.record import Record as OctoRecord
    from octodns.yaml import safe_load
    from octodns.zone import Zone as OctoZoneModel

    try:
        data = safe_load(io.StringIO(text), enforce_order=src.enforce_order,
                         order_mode=src.order_mode) or {}
        zone = OctoZoneModel(name, [])
        out = []
        for key, entries in dict(data).items():
            for entry in entries if isinstance(entries, list) else [entries]:
                record = OctoRecord.new(zone, str(key), _as_read(dict(entry), src),
                                        lenient=True)
                values = getattr(record, "values", None) or [record.value]
                out.append({"name": record.fqdn, "type": record._type, "ttl": record.ttl,
                            "records": [{"content": v.to_rdata_text(), "disabled": False}
                                        for v in values]})
    except Exception as exc:  # yaml.YAMLError, ConstructorError (order), record validation
        raise Refused(yaml_problem(exc, label)) from None
    return out


def _as_read(entry: dict[str, Any], src: Source) -> dict[str, Any]:
    """What octoDNS's YamlProvider does to an entry before making a record of it."""
    entry.setdefault("ttl", src.default_ttl)
    if not src.escaped_semicolons and entry.get("type") in ("TXT", "SPF"):
        if entry.get("value") is not None:
            entry["value"] = str(entry["value"]).replace(";", "\\;")
        if "values" in entry:
            entry["values"] = [str(v).replace(";", "\\;") for v in entry["values"]]
    return entry


# -- editing ----------------------------------------------------------------------------------


def _indents(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, dash offset) indentation of the file, so a re-dump keeps its look."""
    from ruamel.yaml.util import load_yaml_guess_indent

    _, seq, offset = load_yaml_guess_indent(text)
    lines = text.splitlines()
    mapping = 2
    for top, child in itertools.pairwise(lines):
        if re.match(r"^[^\s#-][^:]*:\s*$", top):
            m = re.match(r"^( +)[^\s#-]", child)
            if m:
                mapping = len(m.group(1))
                break
    return mapping, seq or 2 + (offset or 0), offset or 0


def _sort_key(src: Source) -> Any:
    if src.order_mode == "simple":
        return lambda s: s
    from natsort import natsort_keygen

    return natsort_keygen()


def _insert_sorted(mapping: Any, key: str, value: Any, src: Source) -> None:
    keygen = _sort_key(src)
    keys = list(mapping.keys())
    pos = next((i for i, k in enumerate(keys) if keygen(str(k)) > keygen(key)), len(keys))
    mapping.insert(pos, key, value)


def _mapping(items: dict[str, Any], src: Source) -> Any:
    """A new YAML mapping with its keys in the order octoDNS enforces."""
    from ruamel.yaml.comments import CommentedMap

    out = CommentedMap()
    for key in sorted(items, key=_sort_key(src)):
        value = items[key]
        out[key] = _mapping(value, src) if isinstance(value, dict) else value
    return out


def _values(change: dict[str, Any], src: Source) -> list[Any]:
    rtype = change["type"]
    return [octodns_value(Record(change["name"], rtype, r["content"]),
                          escaped=src.escaped_semicolons) for r in change["records"]]


def _set_values(entry: Any, rtype: str, values: list[Any], src: Source) -> None:
    from ruamel.yaml.comments import CommentedSeq

    new_values = [_mapping(v, src) if isinstance(v, dict) else v for v in values]
    key = "value" if rtype in SINGLE_VALUE or (len(values) == 1 and "value" in entry) \
        else "values"
    new: Any = new_values[0] if key == "value" else CommentedSeq(new_values)
    old_key = "values" if key == "value" else "value"
    if old_key in entry:
        pos = list(entry.keys()).index(old_key)
        del entry[old_key]
        entry.insert(pos, key, new)
    elif key in entry:
        entry[key] = new
    else:
        _insert_sorted(entry, key, new, src)


def _apply(doc: Any, change: dict[str, Any], zone: str, src: Source) -> None:
    from ruamel.yaml.comments import CommentedSeq

    key = relative(change["name"], zone)
    rtype = change["type"]
    node = doc.get(key)
    entries = list(node) if isinstance(node, list) else [node] if node is not None else []
    entry = next((e for e in entries if str(e.get("type", "")).upper() == rtype), None)
    if change["changetype"] == "DELETE":
        if entry is None:
            return
        if isinstance(node, list):
            node.remove(entry)
            if node:
                return
        del doc[key]
        return
    values = _values(change, src)
    if entry is not None:
        _set_values(entry, rtype, values, src)
        return
    fresh = _mapping({"type": rtype, "ttl": change.get("ttl", src.default_ttl)}, src)
    _set_values(fresh, rtype, values, src)
    if node is None:
        _insert_sorted(doc, key, fresh, src)
    elif isinstance(node, list):
        node.append(fresh)
    else:
        doc[key] = CommentedSeq([node, fresh])


def edit(text: str, zone: str, changes: list[dict[str, Any]], src: Source) -> str:
    """The YAML text with RRset changes (`plan.ZonePlan.changes` shape) applied; comments,
    key order and layout of everything untouched are kept (ruamel.yaml round-trip)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long TXT value (a DKIM key) onto a second line
    mapping, sequence, offset = _indents(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    yaml.explicit_start = text.lstrip().startswith("---")
    doc = yaml.load(text)
    if doc is None:
        doc = CommentedMap()
    for change in changes:
        _apply(doc, change, zone, src)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def unified_diff(old: str, new: str, path: str) -> str:
    import difflib

    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        f"a/{path}", f"b/{path}"))
