"""What only Mastodon does: split domains, authorized fetch, streaming health, instance API."""

from __future__ import annotations

from typing import Any

import pytest

from watchtower.lab.apps import MastodonApp
from watchtower.lab.apps.common import older_version

from .shared_specs import nodeinfo_errors
from .wsgi_client import AP_ACCEPT, call

WEB = "https://social.example.test:8443"
ACCOUNT = "https://example.test:8443"
SIGNED = {**AP_ACCEPT, "Signature": 'keyId="https://peer.test/actor#main-key",'
                                    'algorithm="rsa-sha256",headers="(request-target) host date",'
                                    'signature="c2lnbmVk"'}


def split_app(**kw: Any) -> MastodonApp:
    return MastodonApp("example.test", web_domain="social.example.test", **kw)


def test_split_domain_redirects_discovery_to_the_web_domain() -> None:
    app = split_app()
    assert app.hosts == ("example.test", "social.example.test")
    query = "resource=acct%3Awatchtower%40example.test"
    moved = call(app, f"{ACCOUNT}/.well-known/webfinger?{query}")
    assert moved.status == 301
    assert moved.header("Location") == f"{WEB}/.well-known/webfinger?{query}"
    meta = call(app, f"{ACCOUNT}/.well-known/host-meta")
    assert meta.status == 301 and meta.header("Location") == f"{WEB}/.well-known/host-meta"
    assert call(app, f"{ACCOUNT}/.well-known/nodeinfo").status == 404
    assert call(app, f"{ACCOUNT}/users/watchtower", headers=AP_ACCEPT).status == 404


def test_split_domain_web_side_keeps_the_account_domain_in_handles() -> None:
    app = split_app()
    jrd = call(app, f"{WEB}/.well-known/webfinger?resource=acct:watchtower@example.test").json()
    assert jrd["subject"] == "acct:watchtower@example.test"
    actor_href = next(link["href"] for link in jrd["links"] if link["rel"] == "self")
    assert actor_href == f"{WEB}/users/watchtower"
    # the web domain is accepted in acct: URIs, and actor URLs work as resources too
    for resource in ("acct:watchtower@social.example.test", actor_href,
                     f"{WEB}/@watchtower"):
        again = call(app, f"{WEB}/.well-known/webfinger?resource={resource}")
        assert again.json()["subject"] == "acct:watchtower@example.test", resource
    instance = call(app, f"{WEB}/api/v2/instance").json()
    assert instance["domain"] == "example.test"


def test_nodeinfo_links_2_0_and_2_1_both_valid() -> None:
    app = MastodonApp("social.example.test")
    links = call(app, f"{WEB}/.well-known/nodeinfo").json()["links"]
    assert [link["rel"].rsplit("/", 1)[1] for link in links] == ["2.0", "2.1"]
    for link in links:
        version = link["rel"].rsplit("/", 1)[1]
        doc = call(app, link["href"]).json()
        assert doc["version"] == version
        assert nodeinfo_errors(doc, version) == []
    only_20 = MastodonApp("social.example.test", nodeinfo_versions=("2.0",))
    assert len(call(only_20, f"{WEB}/.well-known/nodeinfo").json()["links"]) == 1
    assert call(only_20, f"{WEB}/nodeinfo/2.1").status == 404


@pytest.mark.parametrize(("secure_mode", "faults", "unsigned", "signed"), [
    (False, set(), 200, 200),
    (True, set(), 401, 200),
    (False, {"secure-mode-flipped"}, 401, 200),
    (True, {"secure-mode-flipped"}, 200, 200),
])
def test_authorized_fetch(secure_mode: bool, faults: set[str], unsigned: int, signed: int
                          ) -> None:
    app = MastodonApp("social.example.test", secure_mode=secure_mode, faults=faults)
    assert call(app, f"{WEB}/users/watchtower", headers=AP_ACCEPT).status == unsigned
    assert call(app, f"{WEB}/users/watchtower", headers=SIGNED).status == signed
    assert call(app, f"{WEB}/users/watchtower/outbox", headers=AP_ACCEPT).status == unsigned


def test_health_and_streaming_health() -> None:
    app = MastodonApp("social.example.test")
    for path in ("/health", "/api/v1/streaming/health"):
        result = call(app, f"{WEB}{path}")
        assert (result.status, result.text) == (200, "OK")
    down = MastodonApp("social.example.test", faults={"streaming-down"})
    assert call(down, f"{WEB}/api/v1/streaming/health").status == 502
    assert call(down, f"{WEB}/health").status == 200


def test_instance_api_reports_the_version() -> None:
    app = MastodonApp("social.example.test", version="4.3.2")
    instance = call(app, f"{WEB}/api/v2/instance").json()
    assert instance["version"] == "4.3.2"
    assert instance["domain"] == "social.example.test"
    assert instance["registrations"]["enabled"] is True
    lagging = MastodonApp("social.example.test", version="4.3.2", faults={"version-lag"})
    assert call(lagging, f"{WEB}/api/v2/instance").json()["version"] == older_version("4.3.2")


def test_post_is_refused() -> None:
    assert call(MastodonApp("social.example.test"), f"{WEB}/health", method="POST"
                ).status == 405
