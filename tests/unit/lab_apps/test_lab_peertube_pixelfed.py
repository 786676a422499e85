"""What only PeerTube or only Pixelfed does."""

from __future__ import annotations

from watchtower.lab.apps import PeerTubeApp, PixelfedApp
from watchtower.lab.apps.common import older_version

from .wsgi_client import AP_ACCEPT, call

TUBE = "https://tube.example.test"
PIX = "https://pix.example.test"


def test_peertube_config_reports_server_version() -> None:
    app = PeerTubeApp("tube.example.test")
    config = call(app, f"{TUBE}/api/v1/config").json()
    assert config["serverVersion"] == "6.3.0"
    assert config["signup"]["allowed"] is True
    lagging = PeerTubeApp("tube.example.test", faults={"version-lag"})
    assert call(lagging, f"{TUBE}/api/v1/config").json()["serverVersion"] == older_version(
        "6.3.0")


def test_peertube_channel_and_instance_actor() -> None:
    app = PeerTubeApp("tube.example.test")
    jrd = call(app, f"{TUBE}/.well-known/webfinger?resource=acct:watchtower_channel@"
                    "tube.example.test").json()
    assert jrd["subject"] == "acct:watchtower_channel@tube.example.test"
    href = next(link["href"] for link in jrd["links"] if link["rel"] == "self")
    assert href == f"{TUBE}/video-channels/watchtower_channel"
    assert call(app, href, headers=AP_ACCEPT).json()["type"] == "Group"
    discovery = call(app, f"{TUBE}/.well-known/nodeinfo").json()["links"]
    application = next(link["href"] for link in discovery if link["rel"].endswith("#Application"))
    assert call(app, application, headers=AP_ACCEPT).json()["type"] == "Application"


def test_peertube_knows_nodeinfo_2_0_only() -> None:
    app = PeerTubeApp("tube.example.test")
    assert call(app, f"{TUBE}/nodeinfo/2.1.json").status == 404
    doc = call(app, f"{TUBE}/nodeinfo/2.0.json").json()
    assert doc["services"]["outbound"] == ["atom1.0", "rss2.0"]


def test_pixelfed_paths() -> None:
    app = PixelfedApp("pix.example.test")
    links = call(app, f"{PIX}/.well-known/nodeinfo").json()["links"]
    assert links == [{"href": f"{PIX}/api/nodeinfo/2.0.json",
                      "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0"}]
    actor = call(app, f"{PIX}/users/watchtower", headers=AP_ACCEPT).json()
    assert actor["endpoints"]["sharedInbox"] == f"{PIX}/f/inbox"
    assert actor["url"] == f"{PIX}/watchtower"
    assert call(app, f"{PIX}/watchtower").status == 200


def test_pixelfed_health_is_its_nodeinfo() -> None:
    down = PixelfedApp("pix.example.test", faults={"health-down"})
    assert call(down, f"{PIX}/api/nodeinfo/2.0.json").status == 503
    assert call(down, f"{PIX}/.well-known/nodeinfo").status == 200
