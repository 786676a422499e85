"""A Pixelfed stand-in: WebFinger, host-meta, NodeInfo at `/api/nodeinfo/2.0.json` (Pixelfed's
own path), actors at `/users/<name>` with the shared inbox at `/f/inbox`, profiles at `/<name>`.

Pixelfed has no dedicated health endpoint; the fedi.health check judges it by its NodeInfo, so
here `health-down` makes the NodeInfo document answer 503.
"""

from __future__ import annotations

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
    acct_parts,
    wants_activitypub,
)
from watchtower.lab.apps.common import (
    Fault,
    Request,
    Response,
    json_response,
    method_not_allowed,
    not_found,
)
from watchtower.lab.apps.queues import HORIZON_FAULTS, QUEUE_FAULTS, horizon


class PixelfedApp(FediApp):
    """Pixelfed 0.12.x."""

    FAULTS: ClassVar[tuple[Fault, ...]] = (*FEDI_FAULTS, *QUEUE_FAULTS, *HORIZON_FAULTS)
    software: ClassVar[str] = "pixelfed"
    nodeinfo_is_health: ClassVar[bool] = True

    def __init__(
        self,
        domain: str,
        version: str = "0.12.4",
        probe_account: str = "watchtower",
        horizon_cookie: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(domain, version, probe_account, **common)
        self.horizon_cookie = horizon_cookie

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        if req.method not in ("GET", "HEAD"):
            return method_not_allowed()
        base = req.base_url(self.domain)
        path = req.path
        answered = horizon(req, faults, self.horizon_cookie)
        if answered is not None:
            return answered
        if path == "/.well-known/webfinger":
            return self._webfinger(req, faults, base)
        if path == "/.well-known/host-meta":
            return self.host_meta_response(req, faults, base)
        if path == "/.well-known/nodeinfo":
            return self.nodeinfo_discovery(faults, [
                {"href": f"{base}/api/nodeinfo/2.0.json", "rel": NODEINFO_REL.format("2.0")},
            ])
        if path == "/api/nodeinfo/2.0.json":
            return self.nodeinfo_document(
                faults, "2.0",
                usage_extra={"localComments": 5},
                metadata={
                    "nodeName": self.title,
                    "software": {"homepage": "https://pixelfed.org",
                                 "repo": "https://github.com/pixelfed/pixelfed"},
                    "config": {"features": {"timelines": {"local": True, "network": True},
                                            "mobile_apis": True, "stories": True,
                                            "video": True}},
                },
            )
        if path.startswith("/users/"):
            return self._users(req, faults, base, path[7:])
        if path.count("/") == 1 and self.knows(path[1:]):
            return self.profile_page(self.probe_account)
        if path == "/":
            return self.home_page()
        return not_found()

    def _webfinger(self, req: Request, faults: frozenset[str], base: str) -> Response:
        resource = req.arg("resource")
        parts = acct_parts(resource) if resource else None
        if parts is None:
            return json_response({"error": "Invalid resource"}, 400)
        if parts[1] != self.domain or not self.knows(parts[0]):
            return json_response([], 404)
        name = self.probe_account
        actor = f"{base}/users/{name}"
        profile = f"{base}/{name}"
        jrd = {
            "subject": f"acct:{name}@{self.domain}",
            "aliases": [profile, actor],
            "links": [
                {"rel": PROFILE_PAGE_REL, "type": "text/html", "href": profile},
                {"rel": "http://schemas.google.com/g/2010#updates-from",
                 "type": "application/atom+xml", "href": f"{actor}.atom"},
                {"rel": "self", "type": ACTIVITY_JSON, "href": actor},
                {"rel": SUBSCRIBE_REL, "template": f"{base}/authorize_interaction?uri={{uri}}"},
            ],
        }
        return self.jrd_response(jrd, faults, content_type="application/json")

    def _users(self, req: Request, faults: frozenset[str], base: str, rest: str) -> Response:
        name, _, sub = rest.partition("/")
        if not self.knows(name):
            return not_found()
        actor_id = f"{base}/users/{self.probe_account}"
        if not wants_activitypub(req):
            return self.profile_page(self.probe_account) if not sub else not_found()
        if sub in ("outbox", "followers", "following"):
            return json_response(self.collection(f"{actor_id}/{sub}"),
                                 content_type=ACTIVITY_JSON)
        if sub:
            return not_found()
        actor: dict[str, Any] = {
            "@context": [
                SECURITY_CONTEXT,
                AS_CONTEXT,
                {"toot": "http://joinmastodon.org/ns#",
                 "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
                 "indexable": "toot:indexable"},
            ],
            "id": actor_id,
            "type": "Person",
            "following": f"{actor_id}/following",
            "followers": f"{actor_id}/followers",
            "inbox": f"{actor_id}/inbox",
            "outbox": f"{actor_id}/outbox",
            "preferredUsername": self.probe_account,
            "name": self.probe_account,
            "summary": "",
            "url": f"{base}/{self.probe_account}",
            "manuallyApprovesFollowers": False,
            "indexable": True,
            "published": "2024-01-01T00:00:00Z",
            "publicKey": self.public_key(actor_id),
            "endpoints": {"sharedInbox": f"{base}/f/inbox"},
        }
        return self.actor_response(actor, faults, content_type=ACTIVITY_JSON)
