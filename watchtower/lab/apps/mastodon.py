"""A Mastodon stand-in: the discovery, federation and health surface the fedi.* checks probe.

Split-domain setups (LOCAL_DOMAIN != WEB_DOMAIN) are modelled the way Mastodon's documentation
prescribes: the account domain's web server only redirects `/.well-known/webfinger` and
`/.well-known/host-meta` (301) to the web domain, which serves everything else; account handles
and WebFinger subjects keep the account domain, actor URLs use the web domain. Mount the one app
object on both hosts (`app.hosts`); it tells the two roles apart by the Host header.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from watchtower.lab.apps.activitypub import (
    ACTIVITY_JSON,
    AS_CONTEXT,
    FEDI_FAULTS,
    NODEINFO_REL,
    PROFILE_PAGE_REL,
    SECURITY_CONTEXT,
    SUBSCRIBE_REL,
    FediApp,
    KeyResolver,
    acct_parts,
    signature_problem,
    wants_activitypub,
)
from watchtower.lab.apps.common import (
    Fault,
    Request,
    Response,
    Routes,
    html_response,
    json_response,
    method_not_allowed,
    not_found,
    redirect,
    text_response,
)
from watchtower.lab.apps.queues import QUEUE_FAULTS, sidekiq_metrics

_NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class MastodonApp(FediApp):
    """Mastodon 4.x as seen from outside: WebFinger, host-meta, NodeInfo, actors, health, the
    instance API. `secure_mode` is AUTHORIZED_FETCH: unsigned actor fetches then get 401."""

    FAULTS: ClassVar[tuple[Fault, ...]] = (
        *FEDI_FAULTS,
        Fault("streaming-down", "the streaming API health check answers 502 from the proxy"),
        Fault("secure-mode-flipped", "authorized fetch behaves opposite to secure_mode"),
        *QUEUE_FAULTS,
    )
    software: ClassVar[str] = "mastodon"

    def __init__(
        self,
        domain: str,
        web_domain: str | None = None,
        version: str = "4.3.2",
        probe_account: str = "watchtower",
        secure_mode: bool = False,
        *,
        nodeinfo_versions: tuple[str, ...] = ("2.0", "2.1"),
        key_resolver: Callable[[str], str] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(domain, version, probe_account, **common)
        self.key_resolver = key_resolver or KeyResolver()
        self.web_domain = web_domain.lower().rstrip(".") if web_domain else None
        self.secure_mode = secure_mode
        self.nodeinfo_versions = nodeinfo_versions
        if self.split:
            self.hosts = (self.domain, self.web_host)
        # The web domain's paths (Mastodon's config/routes.rb, the exporter's, streaming's).
        self._routes = Routes(
            exact={
                "/.well-known/webfinger": self._webfinger,
                "/.well-known/host-meta": lambda req, faults, base, _: self.host_meta_response(
                    req, faults, base),
                "/.well-known/nodeinfo": self._nodeinfo_discovery,
                "/health": self._health,
                "/api/v1/streaming/health": self._streaming_health,
                # the exporter's page (its own port, 9394, in production)
                "/metrics": lambda req, faults, base, _: sidekiq_metrics(faults),
                "/api/v2/instance": lambda req, faults, base, _: json_response(
                    self._instance(base, faults)),
                "/": lambda req, faults, base, _: self.home_page(),
            },
            prefixes=(("/nodeinfo/", self._nodeinfo), ("/users/", self._users),
                      ("/@", self._profile)),
        )

    @property
    def split(self) -> bool:
        return self.web_domain is not None and self.web_domain != self.domain

    @property
    def web_host(self) -> str:
        return self.web_domain or self.domain

    # -- dispatch ---------------------------------------------------------------------------------

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        if req.method not in ("GET", "HEAD"):
            return method_not_allowed()
        if self.split and req.host == self.domain:
            return self._account_domain(req)
        return self._routes.dispatch(req, faults, req.base_url(self.web_host))

    def _nodeinfo_discovery(self, req: Request, faults: frozenset[str], base: str,
                            _rest: str) -> Response:
        links = [{"rel": NODEINFO_REL.format(v), "href": f"{base}/nodeinfo/{v}"}
                 for v in self.nodeinfo_versions]
        return self.nodeinfo_discovery(faults, links)

    def _nodeinfo(self, req: Request, faults: frozenset[str], base: str,
                  version: str) -> Response:
        if version not in self.nodeinfo_versions:
            return not_found()
        return self.nodeinfo_document(
            faults, version,
            metadata={"nodeName": self.title, "nodeDescription": ""},
            software_extra={"repository": "https://github.com/mastodon/mastodon",
                            "homepage": "https://joinmastodon.org"},
        )

    def _health(self, req: Request, faults: frozenset[str], base: str, _rest: str) -> Response:
        if "health-down" in faults:
            return text_response("Service Unavailable\n", 503)
        return text_response("OK")

    def _streaming_health(self, req: Request, faults: frozenset[str], base: str,
                          _rest: str) -> Response:
        if "streaming-down" in faults:
            return html_response(_NGINX_502, 502)
        return text_response("OK")

    def _profile(self, req: Request, faults: frozenset[str], base: str, name: str) -> Response:
        return self.profile_page(self.probe_account) if self.knows(name) else not_found()

    def _account_domain(self, req: Request) -> Response:
        """The LOCAL_DOMAIN host of a split setup: two redirects and nothing else."""
        if req.path in ("/.well-known/webfinger", "/.well-known/host-meta"):
            return redirect(req.base_url(self.web_host) + req.relative_url(), 301)
        return not_found()

    # -- endpoints ---------------------------------------------------------------------------------

    def _webfinger(self, req: Request, faults: frozenset[str], base: str, _rest: str
                   ) -> Response:
        resource = req.arg("resource")
        if not resource:
            return text_response("", 400)
        user = self._user_from_resource(resource, base)
        if user is None or not self.knows(user):
            return text_response("", 404)
        name = self.probe_account
        actor = f"{base}/users/{name}"
        profile = f"{base}/@{name}"
        jrd = {
            "subject": f"acct:{name}@{self.domain}",
            "aliases": [profile, actor],
            "links": [
                {"rel": PROFILE_PAGE_REL, "type": "text/html", "href": profile},
                {"rel": "self", "type": ACTIVITY_JSON, "href": actor},
                {"rel": SUBSCRIBE_REL, "template": f"{base}/authorize_interaction?uri={{uri}}"},
            ],
        }
        return self.jrd_response(jrd, faults)

    def _user_from_resource(self, resource: str, base: str) -> str | None:
        """Mastodon accepts acct: URIs for its own domains and its actor or profile URLs."""
        for prefix in (f"{base}/users/", f"{base}/@"):
            if resource.startswith(prefix):
                return resource[len(prefix):]
        parts = acct_parts(resource)
        if parts is None or parts[1] not in (self.domain, self.web_host):
            return None
        return parts[0]

    def _users(self, req: Request, faults: frozenset[str], base: str, rest: str) -> Response:
        name, _, sub = rest.partition("/")
        if not self.knows(name):
            return not_found()
        if not wants_activitypub(req):
            return redirect(f"{base}/@{self.probe_account}", 302) if not sub else not_found()
        secure = self.secure_mode != ("secure-mode-flipped" in faults)
        # Under AUTHORIZED_FETCH Mastodon answers 401 with the verification failure's reason
        # (ActivityPub::BaseController#require_account_signature!).
        problem = signature_problem(req, self.key_resolver) if secure else None
        if problem is not None:
            return json_response({"error": problem}, 401,
                                 content_type=f"{ACTIVITY_JSON}; charset=utf-8")
        actor_id = f"{base}/users/{self.probe_account}"
        if sub in ("outbox", "followers", "following"):
            return json_response(self.collection(f"{actor_id}/{sub}"),
                                 content_type=f"{ACTIVITY_JSON}; charset=utf-8")
        if sub:
            return not_found()
        return self.actor_response(self._actor(base, actor_id), faults)

    def _actor(self, base: str, actor_id: str) -> dict[str, Any]:
        name = self.probe_account
        return {
            "@context": [
                AS_CONTEXT,
                SECURITY_CONTEXT,
                {
                    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
                    "toot": "http://joinmastodon.org/ns#",
                    "featured": {"@id": "toot:featured", "@type": "@id"},
                    "discoverable": "toot:discoverable",
                    "indexable": "toot:indexable",
                    "memorial": "toot:memorial",
                },
            ],
            "id": actor_id,
            "type": "Person",
            "following": f"{actor_id}/following",
            "followers": f"{actor_id}/followers",
            "inbox": f"{actor_id}/inbox",
            "outbox": f"{actor_id}/outbox",
            "featured": f"{actor_id}/collections/featured",
            "featuredTags": f"{actor_id}/collections/tags",
            "preferredUsername": name,
            "name": "watchtower probe",
            "summary": "<p>Monitoring account.</p>",
            "url": f"{base}/@{name}",
            "manuallyApprovesFollowers": False,
            "discoverable": False,
            "indexable": False,
            "published": "2024-01-01T00:00:00Z",
            "memorial": False,
            "devices": f"{actor_id}/collections/devices",
            "publicKey": self.public_key(actor_id),
            "tag": [],
            "attachment": [],
            "endpoints": {"sharedInbox": f"{base}/inbox"},
        }

    def _instance(self, base: str, faults: frozenset[str]) -> dict[str, Any]:
        """/api/v2/instance as Mastodon 4.3 shapes it (the fields a client or check reads)."""
        return {
            "domain": self.domain,
            "title": self.title,
            "version": self.reported_version(faults),
            "source_url": "https://github.com/mastodon/mastodon",
            "description": "",
            "usage": {"users": {"active_month": max(1, self.users // 3)}},
            "thumbnail": {"url": f"{base}/packs/media/images/preview.png"},
            "icon": [],
            "languages": ["en"],
            "configuration": {
                "urls": {"streaming": f"wss://{self.web_host}", "status": None},
                "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
                "statuses": {"max_characters": 500, "max_media_attachments": 4,
                             "characters_reserved_per_url": 23},
                "translation": {"enabled": False},
            },
            "registrations": {"enabled": self.open_registrations, "approval_required": False,
                              "message": None, "url": None},
            "api_versions": {"mastodon": 2},
            "contact": {"email": f"admin@{self.domain}", "account": None},
            "rules": [],
        }
