"""Exceptions that cross module borders.

`ProbeError` is the one a check lets escape when it could not gather its facts: the runner turns it
into an `error` result (the probe could not run), never into a compliance `fail`.
"""

from __future__ import annotations


class WatchtowerError(Exception):
    """Base of watchtower's own errors."""


class ProbeError(WatchtowerError):
    """The probe could not run: timeout, refused, SERVFAIL, malformed answer, body too large."""

    def __init__(self, reason: str, *, kind: str = "probe") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class ProbeTimeout(ProbeError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason, kind="timeout")


class ConfigError(WatchtowerError):
    """Bad configuration: carries one message per problem, each naming file, key and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class DeliveryError(WatchtowerError):
    """A message (alert, report) could not be delivered; `permanent` says whether a retry is
    pointless (a 5xx refusal, a channel that no longer exists) or may help (a 4xx answer, a
    refused connection, a timeout). The mail relay, the alert channels and the report outbox
    all raise this one class."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent
