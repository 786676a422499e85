"""What an HTTP exchange gives the checks: the response reduced to what they judge, and its
evidence. Apart from the client (`watchtower.net.http`) so that fixtures and stand-ins build
responses without a session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Required, TypedDict

from requests.structures import CaseInsensitiveDict

from watchtower.errors import ProbeError


class Redirect(TypedDict):
    """One hop of a followed redirect."""

    status: int
    location: str


class HttpEvidence(TypedDict, total=False):
    """What a response shows as evidence: the URL asked, its status, the redirects followed,
    the headers asked for (lower-cased names), and whether the body was cut at the cap."""

    url: Required[str]
    status: Required[int | None]
    redirects: list[Redirect]
    headers: dict[str, str]
    truncated: bool


@dataclass(slots=True)
class HttpResponse:
    """A response reduced to what checks judge and reports show."""

    url: str
    status: int
    headers: CaseInsensitiveDict[str]
    body: bytes
    elapsed_ms: float
    history: list[tuple[int, str]] = field(default_factory=list)
    truncated: bool = False

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        """The body as text; invalid UTF-8 is a probe error with a reason, not a crash."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProbeError(f"{self.url}: body is not valid UTF-8 ({exc.reason} at byte "
                             f"{exc.start})", kind="malformed") from exc

    def json(self) -> Any:
        if self.truncated:
            raise ProbeError(f"{self.url}: body larger than the cap, not parsed", kind="too-large")
        try:
            return json.loads(self.text())
        except json.JSONDecodeError as exc:
            raise ProbeError(f"{self.url}: invalid JSON ({exc.msg} at line {exc.lineno})",
                             kind="malformed") from exc
        except RecursionError as exc:  # a hostile server's [[[[...]]]]
            raise ProbeError(f"{self.url}: JSON nested too deeply to parse",
                             kind="malformed") from exc

    def evidence(self, *header_names: str) -> HttpEvidence:
        ev: HttpEvidence = {"url": self.url, "status": self.status}
        if self.history:
            ev["redirects"] = [{"status": s, "location": u} for s, u in self.history]
        for name in header_names:
            if name in self.headers:
                ev.setdefault("headers", {})[name.lower()] = self.headers[name]
        if self.truncated:
            ev["truncated"] = True
        return ev
