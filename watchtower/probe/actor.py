"""watchtower's own ActivityPub probe actor: the identity it signs fetches as under authorized
fetch (Mastodon's secure mode), and the two documents a verifying server needs to trust it.

A server that receives a signed GET fetches the signature's keyId (the actor URL plus
`#main-key`) and, for an actor it has not seen, checks that WebFinger on the actor's host maps
`acct:<preferredUsername>@<host>` back to the same actor (Mastodon's
ActivityPub::FetchRemoteActorService#check_webfinger!). So both the actor document and the
WebFinger answer are served: by `watchtower run` (`ProbeActorApp`), or by any web server the
operator points `federation.actor_url` at, publishing `actor_document()` and `webfinger()`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from watchtower.errors import ConfigError, ProbeError
from watchtower.net import httpsig

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from watchtower.config import Fleet

USERNAME = "watchtower"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
ACTIVITY_JSON = "application/activity+json"


@dataclass(frozen=True)
class ProbeActor:
    """The actor URL and its private key; signs requests and renders its documents."""

    actor_url: str
    key: rsa.RSAPrivateKey

    @property
    def key_id(self) -> str:
        return f"{self.actor_url}#main-key"

    @property
    def host(self) -> str:
        return urlsplit(self.actor_url).netloc

    @property
    def acct(self) -> str:
        return f"acct:{USERNAME}@{urlsplit(self.actor_url).hostname}"

    def sign_get(self, url: str, now: dt.datetime | None = None) -> dict[str, str]:
        """The Host, Date and Signature headers of a signed GET of `url`."""
        return httpsig.sign("GET", url, self.key, self.key_id, now=now)

    def actor_document(self) -> dict[str, Any]:
        url = self.actor_url
        return {
            "@context": [AS_CONTEXT, SECURITY_CONTEXT],
            "id": url,
            "type": "Application",
            "preferredUsername": USERNAME,
            "name": "watchtower monitoring probe",
            "summary": "Fetches public documents to check that this server federates.",
            "inbox": f"{url}/inbox",
            "outbox": f"{url}/outbox",
            "manuallyApprovesFollowers": True,
            "discoverable": False,
            "publicKey": {"id": self.key_id, "owner": url,
                          "publicKeyPem": httpsig.public_pem(self.key)},
        }

    def webfinger(self) -> dict[str, Any]:
        return {"subject": self.acct, "aliases": [self.actor_url],
                "links": [{"rel": "self", "type": ACTIVITY_JSON, "href": self.actor_url}]}


def probe_actor(fleet: Fleet) -> ProbeActor | None:
    """The configured probe actor, or None; a key that cannot be read stops the probe."""
    fed = fleet.federation
    if fed.actor_url is None or fed.actor_key is None:
        return None
    try:
        key = httpsig.load_private_key(fed.actor_key.reveal())
    except ConfigError as exc:
        raise ProbeError(f"federation.actor_key: {exc.problems[0]}", kind="config") from None
    except ValueError as exc:
        raise ProbeError(f"federation.actor_key: {exc}", kind="config") from None
    return ProbeActor(fed.actor_url, key)


StartResponse = Callable[..., Any]


class ProbeActorApp:
    """WSGI app serving the actor document (at the actor URL's path) and its WebFinger answer;
    everything else is 404. `watchtower run` mounts it; tests serve it from the lab front."""

    def __init__(self, actor: ProbeActor) -> None:
        self.actor = actor
        self.path = urlsplit(actor.actor_url).path or "/"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        if path == self.path:
            return _json(start_response, self.actor.actor_document(),
                         f"{ACTIVITY_JSON}; charset=utf-8")
        if path == "/.well-known/webfinger":
            resource = (query.get("resource") or [""])[0]
            if resource.lower() in (self.actor.acct.lower(), self.actor.actor_url):
                return _json(start_response, self.actor.webfinger(), "application/jrd+json")
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]


def _json(start_response: StartResponse, doc: Any, content_type: str) -> list[bytes]:
    body = json.dumps(doc).encode()
    start_response("200 OK", [("Content-Type", content_type),
                              ("Content-Length", str(len(body)))])
    return [body]
