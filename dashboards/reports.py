"""The seam between the dashboard and the reports engine (`watchtower.report`).

The Reports page talks only to a `ReportSource`:
- `available()`        whether the reports engine is installed;
- `list_reports()`     past reports, newest first, as `ReportEntry` (with delivery state);
- `download(id)`       the files of one report (`ReportFile`: name, MIME type, bytes);
- `schedules()`        the `[[reports]]` entries a person may send now;
- `send_now(user, n)`  build the report of entry `n` now, store it and mail it; returns a line to
                       show, raises `ReportsUnavailable` with the reason otherwise.

`EngineReports` implements it with the engine's function API (`list_reports`, `get_report`,
`make_scheduled_report`); `NoReports` stands in when the engine cannot be imported, so the page
says so instead of failing. `report_source` picks one.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from watchtower.config import Fleet
from watchtower.store import Store, aware

from .auth import User

REPORT_MODULE = "watchtower.report"


class ReportsUnavailable(RuntimeError):
    """Reports cannot be listed or sent (the engine is missing or failed); says why."""


@dataclass(frozen=True, slots=True)
class ReportFile:
    name: str
    mime: str
    data: bytes


@dataclass(slots=True)
class ReportEntry:
    id: int
    created_at: dt.datetime | None
    labels: dict[str, str] = field(default_factory=dict)
    formats: list[str] = field(default_factory=list)


class ReportSource(Protocol):
    def available(self) -> bool: ...

    def list_reports(self, limit: int = 100) -> list[ReportEntry]: ...

    def download(self, report_id: int) -> list[ReportFile]: ...

    def schedules(self) -> list[str]: ...

    def send_now(self, user: User, name: str) -> str: ...


class NoReports:
    """Stands in while the reports engine is not installed."""

    def available(self) -> bool:
        return False

    def list_reports(self, limit: int = 100) -> list[ReportEntry]:
        return []

    def download(self, report_id: int) -> list[ReportFile]:
        return []

    def schedules(self) -> list[str]:
        return []

    def send_now(self, user: User, name: str) -> str:
        raise ReportsUnavailable("the reports engine is not installed; nothing was sent")


def _files_of(row: Any) -> list[ReportFile]:
    """The stored parts of a report row, exactly as they were sent."""
    stem = f"report-{row.id}-{row.name}"
    files = []
    if row.html:
        files.append(ReportFile(f"{stem}.html", "text/html", row.html.encode()))
    if row.pdf:
        files.append(ReportFile(f"{stem}.pdf", "application/pdf", bytes(row.pdf)))
    if row.body_json:
        files.append(ReportFile(f"{stem}.json", "application/json", row.body_json.encode()))
    if row.text:
        files.append(ReportFile(f"{stem}.txt", "text/plain", row.text.encode()))
    return files


class EngineReports:
    """Reports through `watchtower.report`: the rows it stored, and its send path."""

    def __init__(self, fleet: Fleet, store: Store, module: Any) -> None:
        self.fleet = fleet
        self.store = store
        self.module = module

    def available(self) -> bool:
        return True

    def list_reports(self, limit: int = 100) -> list[ReportEntry]:
        out = []
        for row in self.module.list_reports(self.store, limit=limit):
            labels = {"name": row.name, "customer": row.customer or "whole fleet",
                      "score": "-" if row.score is None else f"{row.score} %",
                      "state": row.state,
                      "recipients": ", ".join(json.loads(row.recipients or "[]"))}
            if row.last_error:
                labels["last error"] = row.last_error
            out.append(ReportEntry(row.id, aware(row.created_at), labels,
                                   [f.name.rsplit(".", 1)[1] for f in _files_of(row)]))
        return out

    def download(self, report_id: int) -> list[ReportFile]:
        try:
            row = self.module.get_report(self.store, report_id)
        except self.module.ReportError:
            return []
        return _files_of(row)

    def schedules(self) -> list[str]:
        return [r.name for r in getattr(self.fleet, "reports", [])]

    def send_now(self, user: User, name: str) -> str:
        spec = next((r for r in getattr(self.fleet, "reports", []) if r.name == name), None)
        if spec is None:
            raise ReportsUnavailable(f"no [[reports]] entry named {name!r} in the fleet file")
        schedule = importlib.import_module(f"{REPORT_MODULE}.schedule")
        try:
            row = schedule.make_scheduled_report(self.store, self.fleet, spec)
            row = self.module.get_report(self.store, row.id)
        except Exception as exc:  # the engine's failure is shown, never a crash of the page
            raise ReportsUnavailable(f"report {name} could not be built or sent: {exc}") from exc
        outcome = f"report #{row.id} ({name}) {row.state}"
        return outcome + (f": {row.last_error}" if row.last_error else "")


def report_source(fleet: Fleet, store: Store) -> ReportSource:
    try:
        module = importlib.import_module(REPORT_MODULE)
    except ImportError:
        return NoReports()
    return EngineReports(fleet, store, module)
