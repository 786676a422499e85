"""Availability: did the service answer? Declared once, apart from whether its answer complies.

A compliance pass rate is not an uptime: an endpoint that answers every request but sends no
HSTS header fails `web.hsts` on every probe, and counting that as downtime called a site that
never went down "83 % up". So availability is read from a few *signals*, one check per kind of
service, each asking only "did it answer":

| check | service | answered when |
|---|---|---|
| dns.ns.authoritative | DNS | a name server of the zone answers authoritatively with its SOA |
| mail.smtp.starttls | SMTP | an MX greets with 220 (TLS and its versions are judged apart) |
| web.tls.certificate | HTTPS | the TLS handshake completes (the certificate is judged apart) |
| fedi.health | health | the application's own health endpoints answer 200 |
| matrix.version | federation API | `/_matrix/federation/v1/version` answers 200 |
| matrix.client | client API | `/_matrix/client/versions` answers 200 |
| storage.health | health | Garage's health answers and the cluster is not unavailable |
| mail.imap | IMAP | an IMAP port of the mail host answers (a refused login still answered) |
| mail.submission | submission | a submission port (587 or 465) answers |

Each probe of a signal is `answered` (True), `unanswered` (False: refused, timed out, no
handshake, non-200) or not judged (None: the probe itself broke, a crash or a refused admin
token, which says nothing about the service). The answer is a pure function of the probe's
check, status and evidence, stamped on the result before it is stored (watchtower/probe/sweep.py),
so the store keeps it per streak and per rolled-up day and the report counts it exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from watchtower.model import Result, Status

Evidence = Mapping[str, Any]

#: `error_kind`s of a probe that could not reach the service or got no usable answer from it
#: (watchtower/net raises them): the service did not answer. Others (a crash, bad input or
#: configuration, a refused login) are watchtower's or the fleet file's problem: not judged.
UNANSWERED_KINDS = frozenset({
    "timeout", "unreachable", "refused", "tls", "dns", "http", "transport", "banner",
    "protocol", "malformed", "too-large", "redirect-loop", "cname-loop"})


@dataclass(frozen=True, slots=True)
class Signal:
    """One availability signal: the check, the name of what it shows, the question it asks."""

    check: str
    label: str
    question: str
    #: (status, evidence) of a probe that got as far as judging -> answered / not / unknown.
    read: Callable[[Status, Evidence], bool | None]


def _verdict(status: Status, _evidence: Evidence) -> bool | None:
    """Health endpoints: the verdict is the answer (ok or degraded = up, fail = down)."""
    return status in (Status.OK, Status.WARN) if status is not Status.ERROR else None


def _http_200(key: str) -> Callable[[Status, Evidence], bool | None]:
    def read(_status: Status, evidence: Evidence) -> bool | None:
        fetched = evidence.get(key)
        return isinstance(fetched, Mapping) and fetched.get("status") == 200

    return read


def _dns_served(_status: Status, evidence: Evidence) -> bool | None:
    if evidence.get("rcode") == "NXDOMAIN":
        return False
    servers = [s for s in evidence.get("servers") or [] if isinstance(s, Mapping)]
    return any(s.get("aa") and s.get("soa") and s.get("rcode") == "NOERROR" for s in servers)


def _smtp_greets(_status: Status, evidence: Evidence) -> bool | None:
    if evidence.get("null_mx"):
        return None  # a domain that accepts no mail has no mail service to be up
    endpoints = [e for e in evidence.get("endpoints") or [] if isinstance(e, Mapping)]
    return any(str(e.get("banner") or "").startswith("220") for e in endpoints)


def _tls_handshake(_status: Status, evidence: Evidence) -> bool | None:
    return bool(evidence.get("leaf"))


def _a_port_answers(_status: Status, evidence: Evidence) -> bool | None:
    ports = [p for p in evidence.get("ports") or [] if isinstance(p, Mapping)]
    return any(p.get("error_kind") not in UNANSWERED_KINDS for p in ports)


SIGNALS: dict[str, Signal] = {s.check: s for s in (
    Signal("dns.ns.authoritative", "DNS",
           "a name server of the zone answers authoritatively with its SOA", _dns_served),
    Signal("mail.smtp.starttls", "SMTP", "an MX greets with 220", _smtp_greets),
    Signal("web.tls.certificate", "HTTPS", "the TLS handshake completes", _tls_handshake),
    Signal("fedi.health", "health", "the application's health endpoints answer 200",
           _verdict),
    Signal("matrix.version", "federation API",
           "/_matrix/federation/v1/version answers 200", _http_200("version")),
    Signal("matrix.client", "client API", "/_matrix/client/versions answers 200",
           _http_200("versions")),
    Signal("storage.health", "health",
           "the cluster health answers and the cluster is not unavailable", _verdict),
    Signal("mail.imap", "IMAP", "an IMAP port of the mail host answers", _a_port_answers),
    Signal("mail.submission", "submission", "a submission port (587 or 465) answers",
           _a_port_answers),
)}
#: The order signals are shown in.
ORDER = {check: i for i, check in enumerate(SIGNALS)}


def is_signal(check_id: str) -> bool:
    return check_id in SIGNALS


def answered(check_id: str, status: Status | str, evidence: Evidence) -> bool | None:
    """Whether this probe saw the service answer; None for a check that is no signal, or a
    probe that says nothing about the service."""
    signal = SIGNALS.get(check_id)
    if signal is None:
        return None
    status = Status(status)
    kind = evidence.get("error_kind")
    if status is Status.ERROR and isinstance(kind, str):
        # the runner's shape of a probe that could not run (watchtower/probe/runner.py)
        return False if kind in UNANSWERED_KINDS else None
    try:
        return signal.read(status, evidence)
    except (TypeError, ValueError, AttributeError):
        return None  # evidence of another shape (an older check version): unknown


def stamp(results: Iterable[Result]) -> None:
    """Set `answered` on each result (the sweep does it before the results are stored)."""
    for r in results:
        r.answered = answered(r.check, r.status, r.evidence)
