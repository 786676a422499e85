"""The words every part of watchtower speaks: statuses, targets, facts and results.

Kept free of I/O so that checks, the store, metrics, reports and the dashboard can all import it
without pulling in each other.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JSON = dict[str, Any]


class Status(StrEnum):
    """A verdict. `error` means the probe could not run; it is never a compliance `fail`."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """Order used for "worst first": a broken probe hides less than a proven failure."""
        return _RANK[self]

    @property
    def is_problem(self) -> bool:
        return self in (Status.FAIL, Status.ERROR)

    @staticmethod
    def worst(statuses: list[Status]) -> Status:
        return max(statuses, key=lambda s: s.rank, default=Status.OK)


_RANK = {Status.OK: 0, Status.WARN: 1, Status.ERROR: 2, Status.FAIL: 3}


class TargetKind(StrEnum):
    """What a check can be pointed at; each check declares the kinds it applies to."""

    ZONE = "zone"
    MAIL_DOMAIN = "mail_domain"
    ENDPOINT = "endpoint"  # every HTTPS endpoint of every service
    MASTODON = "mastodon"
    PEERTUBE = "peertube"
    PIXELFED = "pixelfed"
    SYNAPSE = "synapse"
    GARAGE = "garage"
    HOST = "host"
    MAIL_HOST = "mail_host"
    BACKUP = "backup"  # a backup bucket and prefix (backup.freshness)
    HEARTBEAT = "heartbeat"  # a push heartbeat pinged by a cron job (heartbeat.ping)
    VANTAGE = "vantage"  # a vantage point probes run from (watchtower/scaleout; no check)


FEDI_KINDS = (TargetKind.MASTODON, TargetKind.PEERTUBE, TargetKind.PIXELFED)


@dataclass(frozen=True, slots=True)
class Target:
    """One thing to probe. `name` is unique per kind; `spec` is its (validated) config entry."""

    kind: TargetKind
    name: str
    spec: Any = field(default=None, compare=False, hash=False, repr=False)
    tags: tuple[str, ...] = field(default=(), compare=False, hash=False)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(slots=True)
class Finding:
    """One judged statement: a status with the reason a person reads."""

    status: Status
    message: str


@dataclass(slots=True)
class Verdict:
    """What a judgement returns: the overall status, a one-line summary and the findings."""

    status: Status
    summary: str
    findings: list[Finding] = field(default_factory=list)


class Findings:
    """Collects findings while judging and turns them into one Verdict.

    Judgements stay short and readable: `f.fail("no MX")`, `f.warn(...)`, then `f.verdict("all
    good")`. The summary names the worst findings first, so the headline is the reason.
    """

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def add(self, status: Status, message: str) -> None:
        self.items.append(Finding(status, message))

    def ok(self, message: str) -> None:
        self.add(Status.OK, message)

    def warn(self, message: str) -> None:
        self.add(Status.WARN, message)

    def fail(self, message: str) -> None:
        self.add(Status.FAIL, message)

    def error(self, message: str) -> None:
        self.add(Status.ERROR, message)

    @property
    def status(self) -> Status:
        return Status.worst([f.status for f in self.items])

    def verdict(self, ok_summary: str) -> Verdict:
        status = self.status
        if status is Status.OK:
            return Verdict(Status.OK, ok_summary, list(self.items))
        worst = [f.message for f in self.items if f.status is status]
        summary = "; ".join(worst[:3]) + (f" (+{len(worst) - 3} more)" if len(worst) > 3 else "")
        return Verdict(status, summary, list(self.items))


@dataclass(frozen=True, slots=True)
class Cause:
    """The root cause a result was not judged for: the failing prerequisite check and the
    target it failed on (watchtower/probe/dependencies.py). Its own (check, target) is the key
    of the one incident its dependents are listed under."""

    check: str
    target: str

    def __str__(self) -> str:
        return f"{self.check} on {self.target}"

    def to_json(self) -> JSON:
        return {"check": self.check, "target": self.target}


@dataclass(slots=True)
class Result:
    """The outcome of one (check, target) probe, as stored, exported and shown. `cause` is set
    only on an `error` that a failed prerequisite caused: it is not a finding of its own."""

    check: str
    family: str
    target: Target
    status: Status
    summary: str
    evidence: JSON
    duration_ms: float
    at: dt.datetime
    findings: list[Finding] = field(default_factory=list)
    cause: Cause | None = None
    #: For an availability signal (watchtower/probe/availability.py): whether the service
    #: answered this probe; None for other checks and for probes that say nothing about it.
    answered: bool | None = None

    def to_json(self) -> JSON:
        """The stable JSON shape of `watchtower check --format json` (part of the API)."""
        out: JSON = {
            "target": self.target.name,
            "target_kind": str(self.target.kind),
            "check": self.check,
            "family": self.family,
            "status": str(self.status),
            "summary": self.summary,
            "evidence": self.evidence,
            "findings": [{"status": str(f.status), "message": f.message} for f in self.findings],
            "duration_ms": round(self.duration_ms, 1),
            "at": self.at.isoformat(),
        }
        if self.cause is not None:
            out["cause"] = self.cause.to_json()
        return out


#: Names of evidence gauges: snake_case with a base unit suffix (docs/metrics.md).
GAUGE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,80}$")
# Until a check adopts the `metrics` convention, its expiry is read from the leaf's not_after.
CERTIFICATE_CHECKS = ("web.tls.certificate", "mail.smtp.certificate")


def gauges_of(check_id: str, evidence: JSON) -> dict[str, float]:
    """The numeric gauges a result carries in its evidence under `metrics`, e.g.
    `{"metrics": {"certificate_expiry_timestamp_seconds": 1.7e9}}`; bad names/values are
    dropped. Part of the result's shape: the store keeps them with every result it records
    (`check_gauge`), and /metrics exports them, whether or not alerting runs."""
    out: dict[str, float] = {}
    raw = evidence.get("metrics")
    if isinstance(raw, dict):
        for name, value in raw.items():
            if (isinstance(name, str) and GAUGE_NAME.match(name)
                    and isinstance(value, int | float) and not isinstance(value, bool)
                    and math.isfinite(value)):
                out[name] = float(value)
    if check_id in CERTIFICATE_CHECKS and "certificate_expiry_timestamp_seconds" not in out:
        leaf = evidence.get("leaf")
        if isinstance(leaf, dict) and isinstance(leaf.get("not_after"), str):
            with contextlib.suppress(ValueError):
                out["certificate_expiry_timestamp_seconds"] = epoch_seconds(leaf["not_after"])
    return out


def epoch_seconds(value: Any) -> float:
    """Epoch seconds of an ISO 8601 text or a datetime (naive ones are UTC, as stored)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return float(value.timestamp())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_json_safe(value: Any) -> Any:
    """Turn facts into JSON-serialisable evidence (dates to ISO text, bytes to hex, sets sorted)."""
    if isinstance(value, Mapping):
        return {str(k): as_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json_safe(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(as_json_safe(v) for v in value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, StrEnum):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
