"""What `watchtower run` serves on its listener besides /metrics: push heartbeats and the probe
actor. (The wiring of `watchtower run` moves to watchtower/daemon.py; this is its HTTP surface.)

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
    /metrics."""

    def __init__(self, metrics: WsgiApp, heartbeats: HeartbeatApp, actor: WsgiApp | None
                 ) -> None:
        self.metrics = metrics
        self.heartbeats = heartbeats
        self.actor = actor

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", "/"))
        if path.startswith(PING_PREFIX):
            return self.heartbeats(environ, start_response)
        actor = self.actor
        if actor is not None and (path == "/.well-known/webfinger"
                                  or path == getattr(actor, "path", None)):
            return actor(environ, start_response)
        return self.metrics(environ, start_response)

    @property
    def credentials(self) -> Any:
        return getattr(self.metrics, "credentials", None)

    @credentials.setter
    def credentials(self, value: Any) -> None:
        self.metrics.credentials = value  # type: ignore[attr-defined]
