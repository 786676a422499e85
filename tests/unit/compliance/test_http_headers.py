"""internet.nl's header rules as watchtower states them (watchtower.compliance.http_headers)."""

from __future__ import annotations

import pytest

from watchtower.compliance import http_headers as hh
from watchtower.compliance.frameworks import InStatus

GOOD = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"


@pytest.mark.parametrize(("policy", "problem"), [
    (GOOD, None),
    ("default-src 'none'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
     "form-action 'self'", None),
    (GOOD + "; img-src 'self' https://cdn.example.test", None),
    ("default-src 'self' https://static.www.example.test; frame-ancestors 'none'; "
     "base-uri 'self'; form-action 'self'", None),
    (GOOD + "; script-src 'self' 'unsafe-eval'", "'unsafe-eval' allowed"),
    (GOOD + "; img-src http://cdn.example.test", "http: sources"),
    (GOOD + "; img-src https:", "bare https:"),
    (GOOD + "; img-src cdn.example.test", "without a scheme"),
    (GOOD + "; object-src data:", "data: allowed for object-src"),
    ("default-src 'self' https://other.example.org; frame-ancestors 'none'; base-uri 'self'; "
     "form-action 'self'", "default-src"),
    ("default-src 'self'; base-uri 'self'; form-action 'self'", "frame-ancestors"),
    ("default-src 'self'; frame-ancestors 'none'; form-action 'self'", "base-uri"),
    ("frame-ancestors 'none'; base-uri 'self'; form-action 'self'", "frame-src"),
    (None, "no Content-Security-Policy"),
])
def test_csp_rules(policy: str | None, problem: str | None) -> None:
    problems = hh.csp_problems(policy, "www.example.test")
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(("value", "status"), [
    ("no-referrer", InStatus.PASSED), ("same-origin", InStatus.PASSED),
    ("unsafe-url, no-referrer", InStatus.PASSED),  # the last value counts
    ("strict-origin-when-cross-origin", InStatus.INFO), (None, InStatus.INFO),
    ("no-referrer-when-downgrade", InStatus.WARNING), ("bogus", InStatus.WARNING),
])
def test_referrer_policy(value: str | None, status: InStatus) -> None:
    assert hh.referrer_policy(value).status is status


def test_frame_options_by_header_or_frame_ancestors() -> None:
    assert hh.x_frame_options("SAMEORIGIN", None).status is InStatus.PASSED
    assert hh.x_frame_options(None, "frame-ancestors 'self'").status is InStatus.PASSED
    assert hh.x_frame_options("ALLOW-FROM https://a", "frame-ancestors *").status is \
        InStatus.FAILED
