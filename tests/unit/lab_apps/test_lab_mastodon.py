"""What only Mastodon does: split domains, authorized fetch, streaming health, instance API."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from watchtower.lab.apps import MastodonApp
from watchtower.lab.apps.common import older_version
from watchtower.net import httpsig

from .shared_specs import nodeinfo_errors
from .wsgi_client import AP_ACCEPT, call

WEB = "https://social.example.test:8443"
ACCOUNT = "https://example.test:8443"
PEER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEER_KEY_ID = "https://peer.test/actor#main-key"


def peer_key(key_id: str) -> str:
    """The stand-in's key resolver for these tests: only the peer's key is known."""
    if key_id != PEER_KEY_ID:
        raise httpsig.SignatureError(f"Public key not found for key {key_id}")
    return httpsig.public_pem(PEER_KEY)


def signed(url: str, key: Any = PEER_KEY, key_id: str = PEER_KEY_ID) -> dict[str, str]:
    return {**AP_ACCEPT, **httpsig.sign("GET", url, key, key_id)}


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


@pytest.mark.parametrize(("secure_mode", "faults", "unsigned", "signed_status"), [
    (False, set(), 200, 200),
    (True, set(), 401, 200),
    (False, {"secure-mode-flipped"}, 401, 200),
    (True, {"secure-mode-flipped"}, 200, 200),
])
def test_authorized_fetch(secure_mode: bool, faults: set[str], unsigned: int,
                          signed_status: int) -> None:
    app = MastodonApp("social.example.test", secure_mode=secure_mode, faults=faults,
                      key_resolver=peer_key)
    url = f"{WEB}/users/watchtower"
    assert call(app, url, headers=AP_ACCEPT).status == unsigned
    assert call(app, url, headers=signed(url)).status == signed_status
    assert call(app, f"{url}/outbox", headers=AP_ACCEPT).status == unsigned


@pytest.mark.parametrize(("tamper", "reason"), [
    (lambda h: {**h, "Signature": h["Signature"].replace('signature="', 'signature="AB')},
     "Verification failed"),
    (lambda h: {**h, "Signature": h["Signature"].replace("(request-target) host date",
                                                         "(request-target) date")},
     "requires the Host header"),
    (lambda h: {**h, "Date": "Mon, 01 Jan 2024 00:00:00 GMT"}, "time window"),
    (lambda h: {k: v for k, v in h.items() if k != "Signature"}, "Request not signed"),
])
def test_secure_mode_verifies_signatures_as_mastodon(tamper: Any, reason: str) -> None:
    """The stand-in applies Mastodon's rules: a bad signature, an unsigned Host on a GET, a
    stale Date or no signature at all is a 401 naming the reason."""
    app = MastodonApp("social.example.test", secure_mode=True, key_resolver=peer_key)
    url = f"{WEB}/users/watchtower"
    refused = call(app, url, headers=tamper(signed(url)))
    assert refused.status == 401 and reason in refused.json()["error"], refused.text
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unknown = call(app, url, headers=signed(url, other, "https://else.test/a#main-key"))
    assert unknown.status == 401 and "Public key not found" in unknown.json()["error"]


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
