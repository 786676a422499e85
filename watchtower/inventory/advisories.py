"""Security advisories for the packages of a running closure, and the whitelist that mutes some.

Two feed formats are read, both as local files (`[feeds] advisories`):
- vulnix `--json` output: a list of {"pname", "version", "affected_by": [CVE...],
  "whitelisted": [...], "cvssv3_basescore": {CVE: score}, "description": {CVE: text}}. vulnix
  already matched these against some closure; we match them again against *this* host's
  closure, by package name and exact version.
- OSV (https://ossf.github.io/osv-schema/): one record, a list of records or {"vulns": [...]},
  each with affected[].package.name and ranges (ECOSYSTEM/SEMVER events introduced / fixed /
  last_affected) and/or an explicit versions list.

Severity is "critical" when a CVSS v3 base score is 9.0 or more (scored from the vector when only
the vector is given, FIRST CVSS v3.1 specification section 7) or the record says CRITICAL.

The whitelist (`[feeds] whitelist`) is vulnix-style TOML (or the same as JSON):
    ["openssl-3.0.13"]              # package name, or name-version
    cve = ["CVE-2024-0727"]         # optional: without it, every advisory of the package
    until = 2025-03-01              # required: an entry stops muting after this day
    reason = "not reachable: we do not parse PKCS12"   # required
Expired entries stop suppressing: the advisory counts again and the verdict says the entry
expired.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchtower.errors import WatchtowerError
from watchtower.inventory.storepaths import Package
from watchtower.inventory.versions import compare, same, version_key

CRITICAL_SCORE = 9.0


class AdvisoryError(WatchtowerError):
    """An advisory feed or the whitelist cannot be read or is malformed."""


@dataclass(frozen=True, slots=True)
class Advisory:
    """One vulnerability of one package; `affects` decides for a given version."""

    id: str
    package: str
    source: str
    aliases: tuple[str, ...] = ()
    score: float | None = None
    label: str | None = None  # the record's own severity word (CRITICAL, HIGH, MODERATE...)
    summary: str = ""
    versions: tuple[str, ...] = ()
    ranges: tuple[tuple[tuple[str, str], ...], ...] = ()  # per range: (event, version) pairs
    fixed: tuple[str, ...] = field(default=())

    @property
    def severity(self) -> str:
        if (self.score is not None and self.score >= CRITICAL_SCORE) or (
                (self.label or "").upper() == "CRITICAL"):
            return "critical"
        if self.label:
            return self.label.lower()
        if self.score is None:
            return "unknown"
        return "high" if self.score >= 7 else "medium" if self.score >= 4 else "low"

    def affects(self, version: str) -> bool:
        if any(same(version, v) for v in self.versions):
            return True
        return any(_in_range(version, events) for events in self.ranges)


def _in_range(version: str, events: tuple[tuple[str, str], ...]) -> bool:
    """OSV range semantics: the state set by the last boundary at or below `version`."""
    def order(ev: tuple[str, str]) -> tuple[int, tuple[tuple[int, int, str], ...]]:
        return (0, ()) if ev[1] == "0" else (1, version_key(ev[1]))

    affected = False
    for kind, bound in sorted(events, key=order):
        cmp = 1 if bound == "0" else compare(version, bound)
        if kind == "introduced" and cmp >= 0:
            affected = True
        elif (kind == "fixed" and cmp >= 0) or (kind == "last_affected" and cmp > 0):
            affected = False
    return affected


# -- CVSS v3 ---------------------------------------------------------------------------------

_CVSS_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_PR = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def _roundup(value: float) -> float:
    """CVSS v3.1 Appendix A Roundup: the smallest one-decimal number >= value, float-safe."""
    scaled = round(value * 100000)
    if scaled % 10000 == 0:
        return scaled / 100000.0
    return (math.floor(scaled / 10000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float | None:
    """Base score of a `CVSS:3.x/AV:../AC:../...` vector (spec 7.1), None if not one."""
    parts = vector.strip().split("/")
    if not parts or not parts[0].startswith("CVSS:3"):
        return None
    metrics = dict(p.split(":", 1) for p in parts[1:] if ":" in p)
    try:
        scope = metrics["S"]
        w = {k: _CVSS_WEIGHTS[k][metrics[k]] for k in _CVSS_WEIGHTS}
        pr = _PR[scope][metrics["PR"]]
    except KeyError:
        return None
    iss = 1 - (1 - w["C"]) * (1 - w["I"]) * (1 - w["A"])
    unchanged = scope == "U"
    impact = 6.42 * iss if unchanged else 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    exploitability = 8.22 * w["AV"] * w["AC"] * pr * w["UI"]
    if impact <= 0:
        return 0.0
    total = impact + exploitability if unchanged else 1.08 * (impact + exploitability)
    return _roundup(min(total, 10.0))


# -- reading feeds ---------------------------------------------------------------------------


def _vulnix(items: list[Any], source: str) -> list[Advisory]:
    out = []
    for item in items:
        pname, version = item.get("pname"), item.get("version")
        if not isinstance(pname, str) or not isinstance(version, str):
            raise AdvisoryError(f"{source}: vulnix entry without pname/version")
        scores = item.get("cvssv3_basescore") or {}
        texts = item.get("description") or {}
        muted = set(item.get("whitelisted") or [])
        for cve in item.get("affected_by") or []:
            if cve in muted:
                continue
            score = scores.get(cve)
            out.append(Advisory(id=str(cve), package=pname, source=source,
                                score=float(score) if isinstance(score, int | float) else None,
                                summary=str(texts.get(cve, ""))[:300], versions=(version,)))
    return out


def _osv_score(record: dict[str, Any]) -> tuple[float | None, str | None]:
    scores = []
    for sev in record.get("severity") or []:
        if isinstance(sev, dict) and str(sev.get("type", "")).startswith("CVSS_V3"):
            score = cvss3_base_score(str(sev.get("score", "")))
            if score is not None:
                scores.append(score)
    label = (record.get("database_specific") or {}).get("severity")
    return (max(scores) if scores else None), (str(label) if label else None)


def _osv(records: list[Any], source: str) -> list[Advisory]:
    out = []
    for record in records:
        if not isinstance(record, dict) or "id" not in record:
            raise AdvisoryError(f"{source}: OSV record without an id")
        score, label = _osv_score(record)
        for affected in record.get("affected") or []:
            name = (affected.get("package") or {}).get("name")
            if not isinstance(name, str):
                continue
            ranges, fixed = [], []
            for rng in affected.get("ranges") or []:
                if rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
                    continue  # GIT ranges name commits, not versions
                events = tuple((k, str(v)) for ev in rng.get("events") or []
                               for k, v in ev.items()
                               if k in ("introduced", "fixed", "last_affected"))
                ranges.append(events)
                fixed += [v for k, v in events if k == "fixed"]
            eco_label = (affected.get("ecosystem_specific") or {}).get("severity")
            out.append(Advisory(
                id=str(record["id"]), package=name, source=source,
                aliases=tuple(str(a) for a in record.get("aliases") or []),
                score=score, label=label or (str(eco_label) if eco_label else None),
                summary=str(record.get("summary") or record.get("details") or "")[:300],
                versions=tuple(str(v) for v in affected.get("versions") or []),
                ranges=tuple(ranges), fixed=tuple(fixed)))
    return out


def parse_feed(data: Any, source: str) -> list[Advisory]:
    """Detect the format (vulnix list, OSV record/list/{"vulns"}) and read the advisories."""
    if isinstance(data, dict):
        data = data.get("vulns", [data])
    if not isinstance(data, list):
        raise AdvisoryError(f"{source}: expected a JSON list (vulnix) or OSV records")
    if not data:
        return []
    try:
        if all(isinstance(d, dict) and "affected_by" in d for d in data):
            return _vulnix(data, source)
        if all(isinstance(d, dict) and "affected" in d for d in data):
            return _osv(data, source)
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        # A member of the wrong JSON type deep inside a record (a number where a list or an
        # object belongs): the feed is malformed, which is the caller's documented error, not
        # a crash of the drift check (found by tests/reliability/test_fuzz.py).
        raise AdvisoryError(f"{source}: malformed record ({type(exc).__name__}: {exc})") from None
    raise AdvisoryError(f"{source}: neither vulnix --json output nor OSV records")


def load_feeds(paths: Iterable[str]) -> list[Advisory]:
    out: list[Advisory] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise AdvisoryError(f"advisory feed {path}: cannot read ({exc.strerror})") from None
        except ValueError as exc:
            raise AdvisoryError(f"advisory feed {path}: invalid JSON ({exc})") from None
        out += parse_feed(data, path)
    return out


# -- whitelist -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WhitelistEntry:
    key: str  # "name" or "name-version"
    until: dt.date
    reason: str
    ids: frozenset[str] = frozenset()

    def covers(self, advisory: Advisory, pkg: Package) -> bool:
        if self.key not in (pkg.name, f"{pkg.name}-{pkg.version}"):
            return False
        return not self.ids or bool(self.ids & {advisory.id, *advisory.aliases})

    def to_json(self) -> dict[str, Any]:
        return {"entry": self.key, "until": self.until.isoformat(), "reason": self.reason}


def parse_whitelist(data: Any, source: str) -> list[WhitelistEntry]:
    if not isinstance(data, dict):
        raise AdvisoryError(f"{source}: expected a table of entries")
    out = []
    for key, entry in data.items():
        if not isinstance(entry, dict):
            raise AdvisoryError(f"{source}: [{key}] is not a table")
        until = entry.get("until")
        reason = entry.get("reason") or entry.get("comment")
        if isinstance(until, str):
            try:
                until = dt.date.fromisoformat(until[:10])
            except ValueError:
                until = None
        if isinstance(until, dt.datetime):
            until = until.date()
        if not isinstance(until, dt.date):
            raise AdvisoryError(f"{source}: [{key}] needs until = YYYY-MM-DD (an expiry date)")
        if not isinstance(reason, str) or not reason.strip():
            raise AdvisoryError(f"{source}: [{key}] needs a reason")
        cves = entry.get("cve") or []
        if isinstance(cves, str):
            cves = [cves]
        if not isinstance(cves, list):  # `cve = 5` raised TypeError (found by fuzzing)
            raise AdvisoryError(f"{source}: [{key}] cve must be an id or a list of ids")
        ids = frozenset(str(c) for c in cves)
        out.append(WhitelistEntry(str(key), until, reason.strip(), ids))
    return out


def load_whitelist(path: str | None) -> list[WhitelistEntry]:
    if not path:
        return []
    try:
        text = Path(path).read_text()
        data = json.loads(text) if path.endswith(".json") else tomllib.loads(text)
    except OSError as exc:
        raise AdvisoryError(f"whitelist {path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise AdvisoryError(f"whitelist {path}: cannot parse ({exc})") from None
    return parse_whitelist(data, path)


# -- matching ----------------------------------------------------------------------------------


def match(advisories: Iterable[Advisory], pkgs: Iterable[Package],
          whitelist: Iterable[WhitelistEntry] = ()) -> list[dict[str, Any]]:
    """Every (advisory, package) pair where the closure's version is affected, as facts.

    Whitelist entries that cover a match are attached with their expiry; whether they still mute
    it is the judgement's business (it knows "now").
    """
    by_name: dict[str, list[Package]] = {}
    for p in pkgs:
        by_name.setdefault(p.name, []).append(p)
    entries = list(whitelist)
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for adv in advisories:
        for pkg in by_name.get(adv.package, []):
            if not pkg.version or not adv.affects(pkg.version):
                continue
            key = (adv.id, pkg.name, pkg.version)
            covering = [e for e in entries if e.covers(adv, pkg)]
            best = max(covering, key=lambda e: e.until, default=None)
            out.setdefault(key, {
                "id": adv.id, "aliases": list(adv.aliases), "package": pkg.name,
                "version": pkg.version, "severity": adv.severity, "score": adv.score,
                "summary": adv.summary, "fixed": list(adv.fixed), "source": adv.source,
                "whitelist": best.to_json() if best else None,
            })
    return sorted(out.values(), key=lambda m: (m["severity"] != "critical", m["package"],
                                               m["id"]))
