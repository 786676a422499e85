"""A PeerTube stand-in: WebFinger for accounts and channels, NodeInfo at `/nodeinfo/2.0.json`,
actors under `/accounts/` and `/video-channels/`, and `/api/v1/config` (its health and version
source for the fedi.health and drift.version checks).

Shapes follow PeerTube's own controllers: WebFinger is served as plain `application/json` with
CORS on every answer, the subject echoes the requested resource, NodeInfo only knows schema 2.0.
"""

from __future__ import annotations

from typing import Any, ClassVar

from watchtower.lab.apps.activitypub import (
    ACTIVITY_JSON,
    AS_CONTEXT,
    FEDI_FAULTS,
    NODEINFO_REL,
    SECURITY_CONTEXT,
    SUBSCRIBE_REL,
    FediApp,
    acct_parts,
    wants_activitypub,
)
from watchtower.lab.apps.common import (
    Fault,
    Request,
    Response,
    Routes,
    json_response,
    method_not_allowed,
    not_found,
    text_response,
)
from watchtower.lab.apps.queues import QUEUE_FAULTS, peertube_jobs

INSTANCE_ACTOR = "peertube"
"""PeerTube's instance actor (type Application), linked from its NodeInfo discovery."""


class PeerTubeApp(FediApp):
    """PeerTube 6.x. The probe account owns a default channel `<account>_channel`."""

    FAULTS: ClassVar[tuple[Fault, ...]] = (*FEDI_FAULTS, *QUEUE_FAULTS)
    software: ClassVar[str] = "peertube"

    def __init__(
        self,
        domain: str,
        version: str = "6.3.0",
        probe_account: str = "watchtower",
        admin_token: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(domain, version, probe_account, **common)
        self.admin_token = admin_token
        self.channel = f"{probe_account}_channel"
        # PeerTube's server/controllers: well-known, nodeinfo, the REST API, the actors.
        self._routes = Routes(
            exact={
                "/.well-known/webfinger": self._webfinger,
                "/.well-known/host-meta": lambda req, faults, base, _: self.host_meta_response(
                    req, faults, base, "application/xml; charset=utf-8"),
                "/.well-known/nodeinfo": self._nodeinfo_discovery,
                "/api/v1/config": self._api_config,
                "/": lambda req, faults, base, _: self.home_page(),
            },
            prefixes=(
                ("/nodeinfo/", self._nodeinfo),
                ("/api/v1/jobs/", lambda req, faults, base, _: peertube_jobs(
                    req, faults, self.admin_token)),
                ("/accounts/", lambda req, faults, base, rest: self._actor_path(
                    req, faults, base, "accounts", rest)),
                ("/video-channels/", lambda req, faults, base, rest: self._actor_path(
                    req, faults, base, "video-channels", rest)),
            ),
        )

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        if req.method not in ("GET", "HEAD"):
            return method_not_allowed()
        return self._routes.dispatch(req, faults, req.base_url(self.domain))

    def _nodeinfo_discovery(self, req: Request, faults: frozenset[str], base: str,
                            _rest: str) -> Response:
        return self.nodeinfo_discovery(faults, [
            {"rel": NODEINFO_REL.format("2.0"), "href": f"{base}/nodeinfo/2.0.json"},
            {"rel": "https://www.w3.org/ns/activitystreams#Application",
             "href": f"{base}/accounts/{INSTANCE_ACTOR}"},
        ])

    def _nodeinfo(self, req: Request, faults: frozenset[str], base: str, rest: str
                  ) -> Response:
        if not rest.endswith(".json"):
            return not_found()
        if rest != "2.0.json" or "nodeinfo-missing" in faults:
            return json_response({"status": 404, "detail": "Nodeinfo schema version not "
                                  "handled"}, 404)
        return self.nodeinfo_document(
            faults, "2.0",
            services={"inbound": [], "outbound": ["atom1.0", "rss2.0"]},
            usage_extra={"localComments": 17},
            metadata={"taxonomy": {"postsName": "Videos"}, "nodeName": self.title,
                      "nodeDescription": ""},
        )

    def _api_config(self, req: Request, faults: frozenset[str], base: str, _rest: str
                    ) -> Response:
        if "health-down" in faults:
            return text_response("Service Unavailable\n", 503)
        return json_response(self._config(faults))

    def _kind_of(self, name: str) -> str | None:
        if name.lower() in (self.probe_account.lower(), INSTANCE_ACTOR):
            return "accounts"
        if name.lower() == self.channel.lower():
            return "video-channels"
        return None

    def _webfinger(self, req: Request, faults: frozenset[str], base: str, _rest: str
                   ) -> Response:
        resource = req.arg("resource")
        parts = acct_parts(resource) if resource else None
        if resource is None or parts is None:
            return json_response({"status": 400, "detail": "Invalid resource"}, 400)
        kind = self._kind_of(parts[0])
        if parts[1] != self.domain or kind is None:
            return json_response({"status": 404, "detail": "Actor not found"}, 404)
        actor = f"{base}/{kind}/{parts[0]}"
        jrd = {
            "subject": resource,
            "aliases": [actor],
            "links": [
                {"rel": "self", "type": ACTIVITY_JSON, "href": actor},
                {"rel": SUBSCRIBE_REL, "template": f"{base}/remote-interaction?uri={{uri}}"},
            ],
        }
        return self.jrd_response(jrd, faults, content_type="application/json; charset=utf-8")

    def _actor_path(self, req: Request, faults: frozenset[str], base: str, kind: str,
                    rest: str) -> Response:
        name, _, sub = rest.partition("/")
        if self._kind_of(name) != kind:
            return not_found()
        actor_id = f"{base}/{kind}/{name}"
        if not wants_activitypub(req):
            return self.profile_page(name) if not sub else not_found()
        if sub in ("outbox", "followers", "following"):
            return json_response(self.collection(f"{actor_id}/{sub}"),
                                 content_type=f"{ACTIVITY_JSON}; charset=utf-8")
        if sub:
            return not_found()
        if name.lower() == INSTANCE_ACTOR:
            actor_type = "Application"
        else:
            actor_type = "Person" if kind == "accounts" else "Group"
        actor: dict[str, Any] = {
            "type": actor_type,
            "id": actor_id,
            "following": f"{actor_id}/following",
            "followers": f"{actor_id}/followers",
            "playlists": f"{actor_id}/playlists",
            "inbox": f"{actor_id}/inbox",
            "outbox": f"{actor_id}/outbox",
            "preferredUsername": name,
            "url": actor_id,
            "name": name,
            "endpoints": {"sharedInbox": f"{base}/inbox"},
            "publicKey": self.public_key(actor_id),
            "published": "2024-01-01T00:00:00.000Z",
            "summary": None,
            "@context": [AS_CONTEXT, SECURITY_CONTEXT,
                         {"RsaSignature2017": "https://w3id.org/security#RsaSignature2017"}],
        }
        return self.actor_response(actor, faults)

    def _config(self, faults: frozenset[str]) -> dict[str, Any]:
        """The part of `/api/v1/config` a monitor reads: versions, instance, signup."""
        return {
            "instance": {
                "name": self.title,
                "shortDescription": "",
                "isNSFW": False,
                "defaultNSFWPolicy": "do_not_list",
                "defaultClientRoute": "/videos/browse",
            },
            "serverVersion": self.reported_version(faults),
            "serverCommit": "",
            "signup": {
                "allowed": self.open_registrations,
                "allowedForCurrentIP": self.open_registrations,
                "requiresEmailVerification": False,
                "requiresApproval": False,
                "minimumAge": 16,
            },
            "federation": {"enabled": True},
            "contactForm": {"enabled": True},
            "user": {"videoQuota": -1, "videoQuotaDaily": -1},
        }
