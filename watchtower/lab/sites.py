"""Which WSGI app serves which lab host name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from watchtower.lab.fleet import LabDomain
from watchtower.lab.https import WsgiApp

SECURITY_HEADERS = [
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
]


def _mta_sts_app(domain: LabDomain) -> WsgiApp:
    policy = (f"version: STSv1\nmode: enforce\nmx: mail.{domain.name}\nmax_age: 604800\n"
              ).encode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/.well-known/mta-sts.txt":
            start_response("200 OK", [("Content-Type", "text/plain"), *SECURITY_HEADERS])
            return [policy]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


def _home_app(host: str) -> WsgiApp:
    body = f"<!doctype html><title>{host}</title><p>{host} (watchtower lab)</p>\n".encode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                  *SECURITY_HEADERS])
        return [body]

    return app


def site_app(domain: LabDomain, host: str) -> WsgiApp:
    if host.startswith("mta-sts."):
        return _mta_sts_app(domain)
    return _home_app(host)
