"""A minimal in-process WSGI client for the stand-in apps.

Every call goes through `wsgiref.validate.validator`, so each answer is also checked against
PEP 3333 (status line, header types, a Content-Type, an iterable that gets closed).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator


@dataclass
class Result:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def environ_for(url: str, method: str = "GET", headers: Mapping[str, str] | None = None
                ) -> dict[str, Any]:
    """An environ for `url` (`https://host:port/path?query` or just `/path?query`)."""
    parts = urlsplit(url)
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        # servers hand PATH_INFO over percent-decoded, as latin-1 (PEP 3333)
        "PATH_INFO": unquote(parts.path or "/", "latin-1"),
        "QUERY_STRING": parts.query,
        "wsgi.input": io.BytesIO(b""),
    }
    if parts.netloc:
        env["HTTP_HOST"] = parts.netloc
    if parts.scheme:
        env["wsgi.url_scheme"] = parts.scheme
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    setup_testing_defaults(env)
    return env


def open_stream(app: Any, url: str, method: str = "GET",
                headers: Mapping[str, str] | None = None
                ) -> tuple[int, list[tuple[str, str]], Iterable[bytes]]:
    """Call the app and hand back its body iterable unread (close it when done)."""
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Any:
        captured["status"] = int(status.split(" ", 1)[0])
        captured["headers"] = response_headers
        return lambda data: None

    body = validator(app)(environ_for(url, method, headers), start_response)
    iterator = iter(body)
    # PEP 3333 lets an app call start_response lazily, at its first chunk: our apps never do,
    # but keep the contract by peeking only when needed.
    if "status" not in captured:
        first = next(iterator)
        return captured["status"], captured["headers"], _chain(first, iterator, body)
    return captured["status"], captured["headers"], _Closing(iterator, body)


class _Closing:
    def __init__(self, iterator: Iterator[bytes], owner: Any) -> None:
        self._iterator = iterator
        self._owner = owner

    def __iter__(self) -> Iterator[bytes]:
        return self._iterator

    def __next__(self) -> bytes:
        return next(self._iterator)

    def close(self) -> None:
        close = getattr(self._owner, "close", None)
        if close is not None:
            close()


def _chain(first: bytes, rest: Iterator[bytes], owner: Any) -> _Closing:
    def gen() -> Iterator[bytes]:
        yield first
        yield from rest

    return _Closing(gen(), owner)


def call(app: Any, url: str, method: str = "GET", headers: Mapping[str, str] | None = None
         ) -> Result:
    """One request, body read whole."""
    status, response_headers, body = open_stream(app, url, method, headers)
    try:
        data = b"".join(body)
    finally:
        body.close()  # type: ignore[attr-defined]
    return Result(status, list(response_headers), data)


AP_ACCEPT = {"Accept": 'application/activity+json, application/ld+json; '
                       'profile="https://www.w3.org/ns/activitystreams"'}
