"""Shared plumbing for the lab's stand-in web applications.

Every stand-in is a plain PEP 3333 callable built on `LabApp`: it parses the request into a small
`Request`, lets the subclass answer with a `Response`, then applies the "hostile" faults that every
app supports (hang, huge body, slow drip, redirect loop, broken JSON, broken UTF-8). The hostile
behaviours live here, once, because a probe must survive them whichever service it talks to.

Faults are switched while the lab runs. The lab either replaces the set (`app.faults = {...}`,
one atomic attribute store) or calls `enable`/`disable`; each request takes a `frozenset` copy of
the set when it starts (a C-level copy that runs under the GIL), so a request sees one consistent
set of faults from start to finish whatever another thread does meanwhile.

Anything that waits (hang, slow drip, huge body) waits on a `threading.Event`: setting it makes
every waiting request finish at once, so the lab can stop its server threads promptly.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, urlencode

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

CHUNK_SIZE = 64 * 1024
"""Size of each chunk the `huge-body` fault yields."""

DEFAULT_HUGE_BODY_SIZE = 1 << 30
"""1 GiB: far beyond any sane response-size cap of a probe."""

DEFAULT_HANG_SECONDS = 3600.0
"""An hour: far beyond any probe timeout."""

LOOP_MARKER = "wt-loop"
"""Query parameter the `redirect-loop` fault toggles to bounce between two URLs."""

DEFAULT_STOP = threading.Event()
"""The stop signal apps use when the lab gives them none: set it to end every hang and drip."""


@dataclass(frozen=True)
class Fault:
    """One switchable misbehaviour of an app: its stable name and what it does, in one line."""

    name: str
    description: str


HOSTILE_FAULTS: tuple[Fault, ...] = (
    Fault("hang", "accept the request and never answer (waits far past any probe timeout)"),
    Fault("huge-body", "stream a body of huge_body_size bytes (1 GiB) in 64 KiB chunks"),
    Fault("slow-drip", "send the real body one byte per second"),
    Fault("redirect-loop", "answer 302 bouncing between two URLs forever"),
    Fault("invalid-json", "truncate every JSON body so it no longer parses"),
    Fault("invalid-utf8", "put invalid UTF-8 bytes into every body"),
)


# ---------------------------------------------------------------------------------------------
# Requests and responses


def _split_host(value: str) -> tuple[str, int | None]:
    """`example.test:8443` -> ("example.test", 8443); IPv6 literals keep their brackets off."""
    value = value.strip()
    port: int | None = None
    if value.startswith("["):
        end = value.find("]")
        host = value[1:end] if end > 0 else value[1:]
        rest = value[end + 1 :] if end > 0 else ""
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, _, tail = value.partition(":")
        if tail.isdigit():
            port = int(tail)
    else:
        host = value
    return host.lower().rstrip("."), port


@dataclass
class Request:
    """The parts of a WSGI request the stand-ins look at."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    host: str
    port: int | None
    query_string: str = ""
    environ: Environ = field(default_factory=dict, repr=False)

    @classmethod
    def from_environ(cls, environ: Environ) -> Request:
        raw_path = environ.get("PATH_INFO", "") or "/"
        try:  # PEP 3333 hands the path over as latin-1-decoded bytes
            path = raw_path.encode("latin-1").decode("utf-8", "replace")
        except UnicodeEncodeError:
            path = raw_path
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        host_value = headers.get("host") or str(environ.get("SERVER_NAME", ""))
        host, port = _split_host(host_value)
        query_string = str(environ.get("QUERY_STRING", ""))
        return cls(
            method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
            path=path,
            query=parse_qs(query_string, keep_blank_values=True),
            headers=headers,
            host=host,
            port=port,
            query_string=query_string,
            environ=environ,
        )

    def arg(self, name: str) -> str | None:
        """The first value of query parameter `name`, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def base_url(self, host: str | None = None, scheme: str = "https") -> str:
        """`https://host[:port]` for links the app hands out.

        The port is the one the client put in its Host header (the lab may listen on a high port),
        left out when it is the scheme's default, so on 443 the URLs look like production ones.
        """
        default = 443 if scheme == "https" else 80
        suffix = f":{self.port}" if self.port is not None and self.port != default else ""
        return f"{scheme}://{host or self.host}{suffix}"

    def relative_url(self, query: Mapping[str, Sequence[str]] | None = None) -> str:
        """This request's path with `query`, or with its own query string byte for byte."""
        if query is None:
            encoded = self.query_string
        else:
            encoded = urlencode([(k, v) for k, vs in query.items() for v in vs])
        return quote(self.path, safe="/@:!$&'()*+,;=-._~") + (f"?{encoded}" if encoded else "")


Body = bytes | Iterable[bytes]


@dataclass
class Response:
    """Status, headers and body; the body is bytes, or an iterable for streamed bodies."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Body = b""

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        self.remove_header(name)
        self.headers.append((name, value))

    def remove_header(self, name: str) -> None:
        lname = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lname]

    @property
    def content_type(self) -> str:
        return self.header("Content-Type") or ""

    def body_bytes(self) -> bytes:
        """The whole body (only for bodies the app built itself, never a streamed one)."""
        if isinstance(self.body, bytes):
            return self.body
        return b"".join(self.body)


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def json_bytes(data: Any, *, pretty: bool = False) -> bytes:
    if pretty:
        return json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(
    data: Any,
    status: int = 200,
    *,
    content_type: str = "application/json; charset=utf-8",
    headers: Sequence[tuple[str, str]] = (),
    pretty: bool = False,
) -> Response:
    return Response(
        status, [("Content-Type", content_type), *headers], json_bytes(data, pretty=pretty)
    )


def text_response(
    text: str,
    status: int = 200,
    *,
    content_type: str = "text/plain; charset=utf-8",
    headers: Sequence[tuple[str, str]] = (),
) -> Response:
    return Response(status, [("Content-Type", content_type), *headers], text.encode("utf-8"))


def html_response(
    html: str, status: int = 200, *, headers: Sequence[tuple[str, str]] = ()
) -> Response:
    return text_response(html, status, content_type="text/html; charset=utf-8", headers=headers)


def not_found(text: str = "Not Found\n") -> Response:
    return text_response(text, 404)


Route = Callable[[Request, frozenset[str], str, str], Response]
"""A handler in a `Routes` table: (request, faults, base URL, the path after the route's
prefix; "" for an exact path)."""


@dataclass(frozen=True)
class Routes:
    """An app's URL map: exact paths, then prefixes in order (the first that matches); 404
    for anything else. One table per app reads like the server's routes file."""

    exact: Mapping[str, Route]
    prefixes: Sequence[tuple[str, Route]] = ()

    def dispatch(self, req: Request, faults: frozenset[str], base: str) -> Response:
        route = self.exact.get(req.path)
        if route is not None:
            return route(req, faults, base, "")
        for prefix, route in self.prefixes:
            if req.path.startswith(prefix):
                return route(req, faults, base, req.path[len(prefix):])
        return not_found()


def method_not_allowed(allowed: str = "GET, HEAD") -> Response:
    return text_response("Method Not Allowed\n", 405, headers=[("Allow", allowed)])


def redirect(location: str, status: int = 302) -> Response:
    return text_response(f"Redirecting to {location}\n", status, headers=[("Location", location)])


# ---------------------------------------------------------------------------------------------
# Hostile bodies


def huge_body(size: int, stop: threading.Event, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield `size` bytes lazily: one preallocated chunk reused, never the whole body in memory."""
    chunk = b"x" * chunk_size
    left = size
    while left > 0 and not stop.is_set():
        if left >= chunk_size:
            yield chunk
            left -= chunk_size
        else:
            yield chunk[:left]
            left = 0


def drip(body: Iterable[bytes], interval: float, stop: threading.Event) -> Iterator[bytes]:
    """Yield `body` one byte at a time, `interval` seconds apart (the first byte at once)."""
    first = True
    for chunk in body:
        for i in range(len(chunk)):
            if not first and stop.wait(interval):
                return
            first = False
            yield chunk[i : i + 1]


def break_json(body: bytes) -> bytes:
    """Wrap the first half of a JSON body in an object that never closes: never parses."""
    return b'{"truncated": ' + body[: len(body) // 2]


def break_utf8(body: bytes) -> bytes:
    """Insert bytes that are invalid in UTF-8 (0xFF and 0xFE never occur) just inside the
    first string, so the body keeps its shape but fails strict decoding."""
    if b'"' in body:
        return body.replace(b'"', b'"\xff\xfe', 1)
    return b"\xff\xfe" + body


# ---------------------------------------------------------------------------------------------
# The base class


class LabApp:
    """Base of every stand-in: fault switching, request parsing and the hostile behaviours.

    Subclasses list their own faults in `FAULTS` and implement `handle`. The hostile faults of
    `HOSTILE_FAULTS` are added to every app.
    """

    FAULTS: ClassVar[tuple[Fault, ...]] = ()

    def __init__(
        self,
        *,
        faults: Iterable[str] = (),
        stop: threading.Event | None = None,
        hang_seconds: float = DEFAULT_HANG_SECONDS,
        huge_body_size: int = DEFAULT_HUGE_BODY_SIZE,
        drip_interval: float = 1.0,
    ) -> None:
        self._faults: set[str] = set()
        self.faults = set(faults)
        self.stop = stop if stop is not None else DEFAULT_STOP
        self.hang_seconds = hang_seconds
        self.huge_body_size = huge_body_size
        self.drip_interval = drip_interval
        self._lock = threading.Lock()
        self.hosts: tuple[str, ...] = ()
        """Host names to mount this app on; empty when it does not care (any host, or an
        address such as Garage's admin port)."""

    # -- faults ---------------------------------------------------------------------------------

    @classmethod
    def supported_faults(cls) -> tuple[Fault, ...]:
        """Every fault this app understands: its own, then the shared hostile ones."""
        return cls.FAULTS + HOSTILE_FAULTS

    @classmethod
    def fault_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in cls.supported_faults())

    @property
    def faults(self) -> set[str]:
        """The faults switched on. Replace it whole (atomic) or use `enable`/`disable`."""
        return self._faults

    @faults.setter
    def faults(self, value: Iterable[str]) -> None:
        new = set(value)
        unknown = new - self.fault_names()
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no fault(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(self.fault_names()))}"
            )
        self._faults = new  # one attribute store: readers see the old set or the new one

    def enable(self, *names: str) -> None:
        with self._lock:
            self.faults = self._faults | set(names)

    def disable(self, *names: str) -> None:
        with self._lock:
            self.faults = self._faults - set(names)

    # -- WSGI -----------------------------------------------------------------------------------

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        """Answer one request as the real application would, given the faults switched on."""
        raise NotImplementedError

    def respond(self, req: Request, faults: frozenset[str]) -> Response:
        """`handle` wrapped in the hostile faults (all but `hang`, which `__call__` does)."""
        if "redirect-loop" in faults:
            query = {k: v for k, v in req.query.items() if k != LOOP_MARKER}
            if LOOP_MARKER not in req.query:
                query[LOOP_MARKER] = ["1"]
            # Relative Location (RFC 9110 10.2.2): right whatever scheme and port the lab uses.
            return redirect(req.relative_url(query), 302)
        resp = self.handle(req, faults)
        if "invalid-json" in faults and "json" in resp.content_type.lower():
            resp.body = break_json(resp.body_bytes())
        if "invalid-utf8" in faults:
            resp.body = break_utf8(resp.body_bytes())
        if "huge-body" in faults:
            resp.remove_header("Content-Length")
            resp.body = huge_body(self.huge_body_size, self.stop)
        if "slow-drip" in faults:
            if isinstance(resp.body, bytes):
                resp.set_header("Content-Length", str(len(resp.body)))
            resp.body = drip([resp.body] if isinstance(resp.body, bytes) else resp.body,
                             self.drip_interval, self.stop)
        return resp

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        faults = frozenset(self._faults)
        req = Request.from_environ(environ)
        if "hang" in faults and self.stop.wait(self.hang_seconds):
            resp = text_response("lab stopping\n", 503)
        elif "hang" in faults:
            resp = text_response("gave up hanging\n", 504)
        else:
            resp = self.respond(req, faults)
        body = resp.body
        if isinstance(body, bytes):
            if resp.header("Content-Length") is None:
                resp.headers.append(("Content-Length", str(len(body))))
            chunks: Iterable[bytes] = [body]
        else:
            chunks = body
        start_response(status_line(resp.status), resp.headers)
        if req.method == "HEAD":
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            return []
        return chunks


class PrefixRouter:
    """Several apps on one host, chosen by path prefix (longest first), else `default`.

    For a host that carries more than one service, e.g. `example.test` serving Mastodon's
    split-domain redirects, the Matrix delegation files and a static site. Paths reach the chosen
    app unchanged: these stand-ins answer at absolute paths, as the real ones do.
    """

    def __init__(self, routes: Iterable[tuple[str, WSGIApp]], default: WSGIApp | None = None
                 ) -> None:
        self.routes = sorted(routes, key=lambda r: len(r[0]), reverse=True)
        self.default = default

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        for prefix, app in self.routes:
            if path.startswith(prefix):
                return app(environ, start_response)
        if self.default is not None:
            return self.default(environ, start_response)
        start_response(status_line(404), [("Content-Type", "text/plain; charset=utf-8")])
        return [b"Not Found\n"]


_VERSION_NUMBER = re.compile(r"\d+")


def older_version(version: str) -> str:
    """A version string lower than `version`, same shape: "4.3.2" -> "4.3.1", "v1.1.0" ->
    "v1.0.0", "6.3.0" -> "6.2.0". Used by the `version-lag` faults."""
    numbers = list(_VERSION_NUMBER.finditer(version))
    for match in reversed(numbers):
        value = int(match.group())
        if value > 0:
            return version[: match.start()] + str(value - 1) + version[match.end() :]
    return version + "-old"
