"""Mastodon, PeerTube and Pixelfed stand-ins: the surface every fedi.* check probes, healthy and
with each fault, driven the way the checks will drive them (discovery first, then the links)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from watchtower.lab.apps import MastodonApp, PeerTubeApp, PixelfedApp
from watchtower.lab.apps.activitypub import FEDI_FAULTS, FediApp
from watchtower.lab.apps.common import older_version

from .shared_specs import nodeinfo_errors
from .wsgi_client import AP_ACCEPT, Result, call

NODEINFO_PREFIX = "http://nodeinfo.diaspora.software/ns/schema/"


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[..., FediApp]
    host: str
    health_path: str
    nodeinfo_path: str
    webfinger_type: str

    @property
    def base(self) -> str:
        return f"https://{self.host}:8443"


CASES = [
    Case("mastodon", lambda **kw: MastodonApp("social.example.test", **kw), "social.example.test",
         "/health", "/nodeinfo/2.1", "application/jrd+json"),
    Case("peertube", lambda **kw: PeerTubeApp("tube.example.test", **kw), "tube.example.test",
         "/api/v1/config", "/nodeinfo/2.0.json", "application/json"),
    Case("pixelfed", lambda **kw: PixelfedApp("pix.example.test", **kw), "pix.example.test",
         "/api/nodeinfo/2.0.json", "/api/nodeinfo/2.0.json", "application/json"),
]

pytestmark = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])


def webfinger(case: Case, app: FediApp, user: str = "watchtower") -> Result:
    return call(app, f"{case.base}/.well-known/webfinger?resource=acct:{user}@{case.host}")


def self_href(jrd: dict[str, Any]) -> str:
    links = [link for link in jrd["links"]
             if link.get("rel") == "self" and link.get("type") == "application/activity+json"]
    assert len(links) == 1
    return str(links[0]["href"])


def fetch_actor(app: FediApp, href: str) -> Result:
    return call(app, href, headers=AP_ACCEPT)


def discover_nodeinfo(case: Case, app: FediApp) -> tuple[str, str]:
    """(schema version, href) of the highest 2.x NodeInfo the discovery document links."""
    found = call(app, f"{case.base}/.well-known/nodeinfo")
    assert found.status == 200
    links = [(link["rel"].removeprefix(NODEINFO_PREFIX), link["href"])
             for link in found.json()["links"] if link["rel"].startswith(NODEINFO_PREFIX)]
    return max(links)


# -- WebFinger --------------------------------------------------------------------------------

def test_webfinger_healthy(case: Case) -> None:
    result = webfinger(case, case.make())
    assert result.status == 200
    assert (result.header("Content-Type") or "").startswith(case.webfinger_type)
    assert result.header("Access-Control-Allow-Origin") == "*"
    jrd = result.json()
    assert jrd["subject"] == f"acct:watchtower@{case.host}"
    assert self_href(jrd).startswith(f"{case.base}/")


def test_webfinger_unknown_account_and_bad_request(case: Case) -> None:
    app = case.make()
    assert webfinger(case, app, "nobody").status == 404
    assert call(app, f"{case.base}/.well-known/webfinger?resource=acct:watchtower@else.test"
                ).status == 404
    assert call(app, f"{case.base}/.well-known/webfinger").status == 400


def test_webfinger_faults(case: Case) -> None:
    wrong = webfinger(case, case.make(faults={"webfinger-wrong-subject"})).json()
    assert wrong["subject"] != f"acct:watchtower@{case.host}"
    no_self = webfinger(case, case.make(faults={"webfinger-no-self"})).json()
    assert not [link for link in no_self["links"] if link.get("rel") == "self"]
    not_json = webfinger(case, case.make(faults={"webfinger-not-json"}))
    assert not_json.status == 200 and "text/html" in (not_json.header("Content-Type") or "")
    assert not_json.body.lstrip().startswith(b"<")
    no_cors = webfinger(case, case.make(faults={"webfinger-no-cors"}))
    assert no_cors.status == 200 and no_cors.header("Access-Control-Allow-Origin") is None


def test_host_meta(case: Case) -> None:
    ns = "{http://docs.oasis-open.org/ns/xri/xrd-1.0}"
    good = call(case.make(), f"{case.base}/.well-known/host-meta")
    assert good.status == 200 and "xml" in (good.header("Content-Type") or "")
    links = ET.fromstring(good.body).findall(f"{ns}Link")
    assert [link.get("template") for link in links if link.get("rel") == "lrdd"] == [
        f"{case.base}/.well-known/webfinger?resource={{uri}}"]
    bad = call(case.make(faults={"host-meta-no-lrdd"}), f"{case.base}/.well-known/host-meta")
    assert not ET.fromstring(bad.body).findall(f"{ns}Link")
    as_json = call(case.make(), f"{case.base}/.well-known/host-meta",
                   headers={"Accept": "application/json"})
    assert as_json.json()["links"][0]["rel"] == "lrdd"


# -- NodeInfo -----------------------------------------------------------------------------------

def test_nodeinfo_is_schema_valid(case: Case) -> None:
    app = case.make()
    version, href = discover_nodeinfo(case, app)
    assert urlsplit(href).path == case.nodeinfo_path
    result = call(app, href)
    assert result.status == 200
    assert "application/json" in (result.header("Content-Type") or "")
    doc = result.json()
    assert nodeinfo_errors(doc, version) == []
    assert (doc["software"]["name"], doc["software"]["version"]) == (case.name, app.version)
    assert isinstance(doc["openRegistrations"], bool)
    assert doc["usage"]["users"]["total"] >= 0


def test_nodeinfo_schema_error(case: Case) -> None:
    app = case.make(faults={"nodeinfo-schema-error"})
    version, href = discover_nodeinfo(case, app)
    result = call(app, href)
    assert result.status == 200
    errors = nodeinfo_errors(result.json(), version)
    assert any("usage" in e for e in errors)
    assert any("string" in e for e in errors)


def test_nodeinfo_missing(case: Case) -> None:
    app = case.make(faults={"nodeinfo-missing"})
    assert call(app, f"{case.base}/.well-known/nodeinfo").status == 404
    assert call(app, f"{case.base}{case.nodeinfo_path}").status == 404


def test_version_lag(case: Case) -> None:
    app = case.make(faults={"version-lag"})
    doc = call(app, f"{case.base}{case.nodeinfo_path}").json()
    assert doc["software"]["version"] == older_version(app.version) != app.version


# -- Actor --------------------------------------------------------------------------------------

def test_actor_healthy(case: Case) -> None:
    app = case.make()
    href = self_href(webfinger(case, app).json())
    result = fetch_actor(app, href)
    assert result.status == 200
    assert (result.header("Content-Type") or "").startswith("application/activity+json")
    actor = result.json()
    assert actor["id"] == href
    assert actor["type"] == "Person"
    assert actor["preferredUsername"] == "watchtower"
    for key in ("inbox", "outbox", "followers"):
        assert actor[key].startswith(f"{case.base}/")
    assert actor["endpoints"]["sharedInbox"].startswith(f"{case.base}/")
    key = actor["publicKey"]
    assert key["owner"] == href and key["id"].startswith(href + "#")
    public = load_pem_public_key(key["publicKeyPem"].encode())
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size >= 2048
    # the same actor keeps the same key
    assert fetch_actor(app, href).json()["publicKey"]["publicKeyPem"] == key["publicKeyPem"]
    outbox = fetch_actor(app, actor["outbox"]).json()
    assert outbox["type"] == "OrderedCollection"


def test_actor_html_without_activitypub_accept(case: Case) -> None:
    app = case.make()
    href = self_href(webfinger(case, app).json())
    result = call(app, href, headers={"Accept": "text/html"})
    assert result.status in (200, 302)
    assert "activity+json" not in (result.header("Content-Type") or "")


def test_actor_faults(case: Case) -> None:
    def actor_with(fault: str) -> Result:
        app = case.make(faults={fault})
        return fetch_actor(app, self_href(webfinger(case, app).json()))

    assert "inbox" not in actor_with("actor-no-inbox").json()
    assert "publicKey" not in actor_with("actor-no-public-key").json()
    assert "sharedInbox" not in actor_with("actor-no-shared-inbox").json().get("endpoints", {})
    wrong = actor_with("actor-wrong-content-type")
    assert "text/html" in (wrong.header("Content-Type") or "")
    assert wrong.json()["type"] == "Person"


# -- health -------------------------------------------------------------------------------------

def test_health(case: Case) -> None:
    assert call(case.make(), f"{case.base}{case.health_path}").status == 200
    assert call(case.make(faults={"health-down"}), f"{case.base}{case.health_path}"
                ).status == 503


def test_every_fedi_fault_is_supported(case: Case) -> None:
    names = case.make().fault_names()
    assert {f.name for f in FEDI_FAULTS} <= names
