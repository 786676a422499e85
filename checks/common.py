"""What the gather steps of several families share: fetching over HTTP the way a judgement
can use, reading what was fetched, and naming origins and durations.

Neutral ground: the web, fediverse, Matrix, storage, drift and queue checks all import from here,
never from each other's modules.

Hostile servers are expected: `fetch` turns what a broken *server* does (redirect loops, bodies
past the cap, invalid UTF-8 or JSON, a certificate we cannot trust) into recorded problems that
judgements fail on, while what stops the *probe* (timeouts, refused connections, DNS errors)
stays a ProbeError, which the runner reports as `error`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, cast
from urllib.parse import urlsplit

from watchtower.errors import ProbeError
from watchtower.model import Target
from watchtower.net.http import HttpEvidence, HttpResponse
from watchtower.probe.api import ProbeContext

#: ProbeError kinds that describe the server's answer, not our ability to ask.
SERVER_FAULT_KINDS = frozenset({"tls", "redirect-loop", "malformed", "too-large"})


class Failure(TypedDict):
    """The facts of a step that could not observe: the ProbeError's reason and kind.

    One shape for every family (IMAP and submission ports, SMTP endpoints, the Sieve session,
    the probe mail's steps, the Rspamd controller), so a judgement reads `error_kind` the same
    way everywhere and tests/integration/lab/test_fact_shapes.py knows these keys wherever the
    lab cannot make the step fail."""

    error: str
    error_kind: str


class HttpAnswer(HttpEvidence, total=False):
    """The facts of one GET as `fetch` records them, shared by the web, fediverse, Matrix,
    storage, queue and drift checks: the response's evidence, its content type, the parsed
    JSON when asked for, and `problem` when the server's answer is unusable (a loop, a body
    past the cap, invalid JSON, a certificate we cannot trust)."""

    content_type: str | None
    problem: str
    json: Any


def failure(exc: ProbeError) -> Failure:
    """`exc` as facts (see `Failure`)."""
    return {"error": exc.reason, "error_kind": exc.kind}


def endpoint_host_port(target: Target) -> tuple[str, int]:
    """The host and port of an endpoint target's URL (443 when it names none)."""
    parts = urlsplit(target.spec.url)
    return parts.hostname or "", parts.port or 443


def age_text(seconds: float) -> str:
    """A duration for a summary: hours up to two days, then days (`10.0 h`, `3.0 days`)."""
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def fetch(
    ctx: ProbeContext, url: str, *, headers: Mapping[str, str] | None = None,
    follow: bool = True, want_json: bool = False, keep: tuple[str, ...] = (),
    max_body: int | None = None,
) -> tuple[HttpAnswer, HttpResponse | None]:
    """GET `url`; returns (facts, response). Server faults land in facts["problem"]."""
    try:
        resp = ctx.get(url, headers=dict(headers or {}), follow_redirects=follow,
                       max_body=max_body)
    except ProbeError as exc:
        if exc.kind in SERVER_FAULT_KINDS:
            return {"url": url, "status": None, "problem": exc.reason}, None
        raise
    # The response's evidence plus the keys below. A cast: mypy's strict extra checks refuse
    # to build an HttpAnswer by ** from the narrower HttpEvidence, as a subtype of it could
    # hold a `problem` or `json` of another type; evidence() builds a fresh dict with neither.
    facts = cast(HttpAnswer, {**resp.evidence("content-type", *keep),
                              "content_type": resp.content_type})
    if resp.truncated:
        facts["problem"] = f"answer larger than {len(resp.body)} bytes (cut off)"
    elif want_json:
        try:
            facts["json"] = resp.json()
        except ProbeError as exc:
            facts["problem"] = exc.reason
    return facts, resp


def answer_problem(fetched: Mapping[str, Any] | None, what: str) -> str | None:
    """Why `fetched` is no usable 200 answer (None when it is)."""
    if not fetched:
        return f"{what}: not fetched"
    if fetched.get("problem") and fetched.get("status") in (None, 200):
        return f"{what}: {fetched['problem']}"
    if fetched.get("status") != 200:
        return f"{what}: HTTP {fetched.get('status')} from {fetched.get('url')}"
    return None


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def https_origin(ctx: ProbeContext, host: str, known: str | None = None) -> str:
    """`https://host[:port]`: the port of `known` (a configured URL) when it names the same
    host, else the fleet's `https_port` (443 in production, a high port in the lab)."""
    if known is not None and (urlsplit(known).hostname or "").lower() == host.lower():
        return origin(known)
    port = ctx.fleet.probe.https_port
    return f"https://{host}" + ("" if port == 443 else f":{port}")


def header(facts: Mapping[str, Any], name: str) -> str | None:
    value = (facts.get("headers") or {}).get(name.lower())
    return value if isinstance(value, str) else None
