"""What `watchtower run` serves on its listener besides /metrics: push heartbeats and the probe
actor (watchtower/daemon/__init__.py wires it into `watchtower run`).

- `POST /ping/<token>` and `POST /ping/<token>/fail`, as Healthchecks takes them from cron jobs
  and backup tools (`curl -fsS -m 10 --retry 5 -X POST https://monitor/ping/<token>`; GET is
  accepted too, like Healthchecks). The token is the secret: it is compared in constant time
  against the configured ones, never logged, and an unknown token gets 404 and writes nothing.
- the probe actor's document at the path of `[federation] actor_url` and its WebFinger answer,
  when the actor is configured and served here (watchtower.probe.actor).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from watchtower.errors import ConfigError, ProbeError
from watchtower.model import utcnow

if TYPE_CHECKING:
    from watchtower.config import Fleet
    from watchtower.metrics import MetricsApp
    from watchtower.store import Store

log = logging.getLogger(__name__)
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
PING_PREFIX = "/ping/"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_table(fleet: Fleet) -> dict[bytes, str]:
    """sha256(token) -> heartbeat name; a token that cannot be read is logged (by name only)
    and left out, so one broken secret file does not stop the others."""
    table: dict[bytes, str] = {}
    for hb in fleet.heartbeats:
        try:
            table[_digest(hb.token.reveal())] = hb.name
        except ConfigError as exc:
            log.error("heartbeat %s: its token cannot be read (%s)", hb.name, exc.problems[0])
    return table


class HeartbeatApp:
    """`/ping/<token>[/fail]` -> one row update in the store; anything else is the caller's."""

    def __init__(self, store: Store, fleet: Fleet) -> None:
        self.store = store
        self.tokens = token_table(fleet)

    def reconfigure(self, fleet: Fleet) -> None:
        self.tokens = token_table(fleet)

    def lookup(self, token: str) -> str | None:
        given = _digest(token)
        found = None
        for digest, name in self.tokens.items():  # every entry compared: no early exit
            if hmac.compare_digest(digest, given):
                found = name
        return found

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        rest = str(environ.get("PATH_INFO", ""))[len(PING_PREFIX):].strip("/")
        token, _, tail = rest.partition("/")
        if environ.get("REQUEST_METHOD") not in ("POST", "GET", "HEAD") or tail not in ("",
                                                                                        "fail"):
            return _text(start_response, "400 Bad Request", "expected /ping/<token>[/fail]\n")
        name = self.lookup(token) if token else None
        if name is None:
            return _text(start_response, "404 Not Found", "not found\n")
        self.store.heartbeats.record_ping(name, tail != "fail", utcnow())
        return _text(start_response, "200 OK", "OK\n")


def _text(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


def actor_app(fleet: Fleet) -> WsgiApp | None:
    """The probe actor's WSGI app, or None when none is configured (or its key is unusable)."""
    from watchtower.probe.actor import ProbeActorApp, probe_actor

    try:
        actor = probe_actor(fleet)
    except ProbeError as exc:
        log.error("the probe actor is not served: %s", exc.reason)
        return None
    return ProbeActorApp(actor) if actor is not None else None


class DaemonApp:
    """Routes the listener: /ping/ to heartbeats, the actor's paths to the actor, the rest to
    /metrics. Until the store is attached every route but the actor answers 503."""

    def __init__(self, fleet: Fleet, runtime: Any = None) -> None:
        self.runtime = runtime
        self.metrics: MetricsApp | None = None
        self.heartbeats: HeartbeatApp | None = None
        self.actor = actor_app(fleet)
        self._fleet = fleet

    def attach(self, store: Store) -> None:
        from watchtower.metrics import MetricsApp, MetricsPage, credentials_of

        self.metrics = MetricsApp(MetricsPage(store, self.runtime),
                                  credentials_of(self._fleet.metrics.auth))
        self.heartbeats = HeartbeatApp(store, self._fleet)

    def reconfigure(self, fleet: Fleet) -> None:
        """New metrics credentials and heartbeat tokens (the listen address needs a restart)."""
        from watchtower.metrics import credentials_of

        credentials = credentials_of(fleet.metrics.auth)
        if self.metrics is not None:
            self.metrics.credentials = credentials
        if self.heartbeats is not None:
            self.heartbeats.reconfigure(fleet)
        self.actor = actor_app(fleet)
        self._fleet = fleet

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", "/"))
        actor = self.actor
        if actor is not None and (path == "/.well-known/webfinger"
                                  or path == getattr(actor, "path", None)):
            return actor(environ, start_response)
        if path.startswith(PING_PREFIX) and self.heartbeats is not None:
            return self.heartbeats(environ, start_response)
        if self.metrics is None or self.heartbeats is None:
            return _text(start_response, "503 Service Unavailable", "starting\n")
        return self.metrics(environ, start_response)


class DaemonHttp:
    """The listener of `watchtower run`: bound at once (so a busy port is known before anything
    else starts), serving from a background thread once the store is attached."""

    def __init__(self, fleet: Fleet, runtime: Any = None) -> None:
        from watchtower.metrics import MetricsServer

        self.app = DaemonApp(fleet, runtime)
        self.server = MetricsServer(self.app, fleet.metrics.listen)
        self.httpd = self.server.httpd
        self.port = self.server.port
        self._serving = False

    def attach(self, store: Store) -> DaemonHttp:
        self.app.attach(store)
        self.server.start()
        self._serving = True
        return self

    def reconfigure(self, fleet: Fleet) -> None:
        self.app.reconfigure(fleet)

    def shutdown(self) -> None:
        if self._serving:  # httpd.shutdown() waits for serve_forever, which never ran otherwise
            self.server.shutdown()
        else:
            self.httpd.server_close()


def serve_http(fleet: Fleet, runtime: Any = None) -> DaemonHttp:
    """Bind the listener (OSError when the address is taken); `attach(store)` starts serving."""
    return DaemonHttp(fleet, runtime)
