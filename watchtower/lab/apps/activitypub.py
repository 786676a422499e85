"""What Mastodon, PeerTube and Pixelfed have in common: WebFinger (RFC 7033), host-meta
(RFC 6415), NodeInfo discovery and documents, ActivityPub actors with an RSA key, and the fault
families the fedi.* checks look for.

Each application spells these a little differently (paths, media types, field sets); the
subclasses in mastodon.py, peertube.py and pixelfed.py carry those differences and this module the
shared mechanics, so a fault means the same thing on all three.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit
from xml.sax.saxutils import quoteattr

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from watchtower.lab.apps.common import (
    Fault,
    LabApp,
    Request,
    Response,
    html_response,
    json_response,
    older_version,
    text_response,
)
from watchtower.net.httpsig import SignatureError, verify

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
ACTIVITY_JSON = "application/activity+json"
NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/{}"
PROFILE_PAGE_REL = "http://webfinger.net/rel/profile-page"
SUBSCRIBE_REL = "http://ostatus.org/schema/1.0/subscribe"
XRD_NS = "http://docs.oasis-open.org/ns/xri/xrd-1.0"

FEDI_FAULTS: tuple[Fault, ...] = (
    Fault("webfinger-wrong-subject", "WebFinger answers with a subject for another account"),
    Fault("webfinger-no-self", "WebFinger JRD has no rel=self activity+json link"),
    Fault("webfinger-not-json", "WebFinger answers 200 with an HTML page"),
    Fault("webfinger-no-cors", "WebFinger answers without Access-Control-Allow-Origin"),
    Fault("host-meta-no-lrdd", "host-meta XRD carries no lrdd template"),
    Fault("nodeinfo-schema-error", "NodeInfo lacks usage and has a numeric software.version"),
    Fault("nodeinfo-missing", "NodeInfo discovery and documents answer 404"),
    Fault("actor-no-inbox", "the actor document has no inbox"),
    Fault("actor-no-public-key", "the actor document has no publicKey"),
    Fault("actor-no-shared-inbox", "the actor document has no endpoints.sharedInbox"),
    Fault("actor-wrong-content-type", "the actor JSON is served as text/html"),
    Fault("health-down", "the health endpoint answers 503"),
    Fault("version-lag", "reports a version older than the declared one"),
)


@functools.cache
def _shared_actor_pem() -> str:
    """One real 2048-bit RSA public key, made once per process, that every lab actor publishes.

    A key per actor cost ~0.1 s of CPU each under a lock, and a bounded cache of them was
    regenerated over and over once a lab had more actors than the cache held: at 60 domains
    the actor pages took 1.4 s each. The lab signs nothing with it, so sharing loses nothing.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


_key_lock = threading.Lock()


def public_key_pem(actor_id: str) -> str:
    """The public key `actor_id` publishes (the lab's shared one)."""
    with _key_lock:  # the first callers arrive together; make the key once
        return _shared_actor_pem()


def wants_activitypub(req: Request) -> bool:
    """True when the Accept header asks for ActivityStreams JSON, as the real servers decide."""
    accept = (req.header("Accept") or "").lower()
    return any(
        kind in accept for kind in (ACTIVITY_JSON, "application/ld+json", "application/json")
    )


class KeyResolver:
    """Finds the public key of a signature's keyId the way Mastodon does: GET the keyId URL as
    ActivityPub JSON, take `publicKey.publicKeyPem` where `publicKey.id` is the keyId, then
    check that WebFinger on the actor's host maps acct:<preferredUsername>@<host> back to the
    actor (ActivityPub::FetchRemoteKeyService, FetchRemoteActorService#check_webfinger!).
    Keys are cached per keyId, as Mastodon keeps the account it resolved. `get_json(url,
    accept)` replaces the HTTP fetch (tests route it through their own resolver)."""

    def __init__(self, ca_bundle: str | None = None, timeout: float = 5.0,
                 get_json: Callable[[str, str], Any] | None = None) -> None:
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.get_json = get_json
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def _get(self, url: str, accept: str) -> Any:
        import requests

        if self.get_json is not None:
            return self.get_json(url, accept)
        try:
            resp = requests.get(url, headers={"Accept": accept}, timeout=self.timeout,
                                verify=self.ca_bundle or True, allow_redirects=False)
            resp.raise_for_status()
            return resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise SignatureError(f"Public key not found for key {url} ({exc})") from None

    def __call__(self, key_id: str) -> str:
        with self._lock:
            if key_id in self._cache:
                return self._cache[key_id]
        actor_url = key_id.split("#", 1)[0]
        actor = self._get(actor_url, ACTIVITY_JSON)
        key = actor.get("publicKey") if isinstance(actor, dict) else None
        if not isinstance(key, dict) or key.get("id") != key_id or not key.get("publicKeyPem"):
            raise SignatureError(f"Public key not found for key {key_id}")
        parts = urlsplit(actor_url)
        resource = f"acct:{actor.get('preferredUsername')}@{parts.hostname}"
        jrd = self._get(f"{parts.scheme}://{parts.netloc}/.well-known/webfinger?"
                        f"{urlencode({'resource': resource})}", "application/jrd+json")
        links = jrd.get("links") if isinstance(jrd, dict) else None
        if not any(isinstance(link, dict) and link.get("rel") == "self"
                   and link.get("href") == actor_url for link in links or []):
            raise SignatureError(f"WebFinger of {resource} does not name {actor_url}")
        with self._lock:
            self._cache[key_id] = str(key["publicKeyPem"])
        return self._cache[key_id]


def signature_problem(req: Request, resolve: Callable[[str], str]) -> str | None:
    """Why the request's HTTP signature does not verify (Mastodon's words), or None."""
    body = b""
    try:
        verify(req.method, req.path, req.headers, body, resolve)
    except SignatureError as exc:
        return str(exc)
    return None


def acct_parts(resource: str) -> tuple[str, str] | None:
    """`acct:user@host` (or `user@host`) -> (user, host), lowercased host; None if not that."""
    value = resource[5:] if resource.lower().startswith("acct:") else resource
    if value.startswith("@"):
        value = value[1:]
    user, sep, host = value.rpartition("@")
    if not sep or not user or not host or "/" in value:
        return None
    return user, host.lower()


def xrd_host_meta(template: str | None) -> str:
    link = f'  <Link rel="lrdd" template={quoteattr(template)}/>\n' if template else ""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<XRD xmlns="{XRD_NS}">\n{link}</XRD>\n'


class FediApp(LabApp):
    """Common behaviour of the three ActivityPub servers. Subclasses set the URLs and shapes."""

    FAULTS: ClassVar[tuple[Fault, ...]] = FEDI_FAULTS
    software: ClassVar[str] = ""
    nodeinfo_is_health: ClassVar[bool] = False
    """True where the fedi.health check judges the service by its NodeInfo (Pixelfed), so
    `health-down` must break the NodeInfo document."""

    def __init__(
        self,
        domain: str,
        version: str,
        probe_account: str,
        *,
        open_registrations: bool = True,
        users: int = 42,
        posts: int = 1234,
        title: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.domain = domain.lower().rstrip(".")
        self.version = version
        self.probe_account = probe_account
        self.open_registrations = open_registrations
        self.users = users
        self.posts = posts
        self.title = title or f"{self.software} on {self.domain}"
        self.hosts = (self.domain,)

    # -- helpers for subclasses -----------------------------------------------------------------

    def reported_version(self, faults: frozenset[str]) -> str:
        return older_version(self.version) if "version-lag" in faults else self.version

    def knows(self, user: str) -> bool:
        return user.lower() == self.probe_account.lower()

    def jrd_response(
        self,
        jrd: dict[str, Any],
        faults: frozenset[str],
        *,
        content_type: str = "application/jrd+json; charset=utf-8",
        domain: str | None = None,
    ) -> Response:
        """A WebFinger answer with the webfinger-* faults applied."""
        if "webfinger-not-json" in faults:
            return html_response("<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>\n")
        if "webfinger-wrong-subject" in faults:
            user = str(jrd["subject"]).removeprefix("acct:").rpartition("@")[0]
            jrd = {**jrd, "subject": f"acct:{user}@wrong.{domain or self.domain}"}
        if "webfinger-no-self" in faults:
            jrd = {**jrd, "links": [link for link in jrd["links"] if link.get("rel") != "self"]}
        headers = [("Cache-Control", "max-age=259200, public"), ("Vary", "Accept")]
        if "webfinger-no-cors" not in faults:
            headers.append(("Access-Control-Allow-Origin", "*"))
        return json_response(jrd, content_type=content_type, headers=headers)

    def host_meta_response(self, req: Request, faults: frozenset[str], base: str,
                           content_type: str = "application/xrd+xml; charset=utf-8") -> Response:
        template = None if "host-meta-no-lrdd" in faults else (
            f"{base}/.well-known/webfinger?resource={{uri}}"
        )
        if "json" in (req.header("Accept") or "").lower():
            links = [{"rel": "lrdd", "template": template}] if template else []
            return json_response({"links": links})
        return text_response(xrd_host_meta(template), content_type=content_type)

    def nodeinfo_discovery(self, faults: frozenset[str], links: list[dict[str, str]]
                           ) -> Response:
        if "nodeinfo-missing" in faults:
            return json_response({"error": "Not Found"}, 404)
        return json_response({"links": links}, headers=[("Access-Control-Allow-Origin", "*")])

    def nodeinfo_document(
        self,
        faults: frozenset[str],
        schema: str,
        *,
        services: dict[str, list[str]] | None = None,
        usage_extra: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        software_extra: dict[str, str] | None = None,
    ) -> Response:
        """A NodeInfo document of `schema` ("2.0", "2.1"), valid against the published schema
        unless `nodeinfo-schema-error` is on."""
        if "nodeinfo-missing" in faults:
            return json_response({"error": "Not Found"}, 404)
        if "health-down" in faults and self.nodeinfo_is_health:
            return text_response("Service Unavailable\n", 503)
        software: dict[str, Any] = {"name": self.software,
                                    "version": self.reported_version(faults)}
        if schema != "2.0" and software_extra:
            software.update(software_extra)
        doc: dict[str, Any] = {
            "version": schema,
            "software": software,
            "protocols": ["activitypub"],
            "services": services or {"outbound": [], "inbound": []},
            "usage": {
                "users": {
                    "total": self.users,
                    "activeMonth": max(1, self.users // 3),
                    "activeHalfyear": max(1, self.users // 2),
                },
                "localPosts": self.posts,
                **(usage_extra or {}),
            },
            "openRegistrations": self.open_registrations,
            "metadata": metadata if metadata is not None else {"nodeName": self.title},
        }
        if "nodeinfo-schema-error" in faults:
            del doc["usage"]
            software["version"] = 4  # a number where the schema wants a string
        content_type = (
            f'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/{schema}#"'
        )
        return json_response(doc, content_type=content_type,
                             headers=[("Access-Control-Allow-Origin", "*")])

    def actor_response(self, actor: dict[str, Any], faults: frozenset[str],
                       content_type: str = f"{ACTIVITY_JSON}; charset=utf-8") -> Response:
        """An actor document with the actor-* faults applied."""
        actor = dict(actor)
        if "actor-no-inbox" in faults:
            actor.pop("inbox", None)
        if "actor-no-public-key" in faults:
            actor.pop("publicKey", None)
        if "actor-no-shared-inbox" in faults:
            endpoints = {k: v for k, v in actor.get("endpoints", {}).items()
                         if k != "sharedInbox"}
            if endpoints:
                actor["endpoints"] = endpoints
            else:
                actor.pop("endpoints", None)
        if "actor-wrong-content-type" in faults:
            content_type = "text/html; charset=utf-8"
        return json_response(actor, content_type=content_type, headers=[("Vary", "Accept")])

    def public_key(self, actor_id: str) -> dict[str, str]:
        return {
            "id": f"{actor_id}#main-key",
            "owner": actor_id,
            "publicKeyPem": public_key_pem(actor_id),
        }

    def home_page(self) -> Response:
        """`/`: the instance's front page (only its title matters to a probe)."""
        return html_response(f"<!DOCTYPE html><html><body><h1>{self.title}</h1>"
                             "</body></html>\n")

    def profile_page(self, name: str) -> Response:
        return html_response(
            f"<!DOCTYPE html><html><head><title>{name}</title></head>"
            f"<body><h1>@{name}@{self.domain}</h1></body></html>\n"
        )

    @staticmethod
    def collection(collection_id: str) -> dict[str, Any]:
        return {"@context": AS_CONTEXT, "id": collection_id, "type": "OrderedCollection",
                "totalItems": 0, "orderedItems": []}
