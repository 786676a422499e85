"""Release feed (reading, update from a releases API, offline message, CLI) and the running
version readers, against a small HTTP server on loopback that answers like the published APIs
(Mastodon, PeerTube, NodeInfo 2.1, Garage admin v1/v2, GitHub/Gitea releases)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from watchtower.cli import main
from watchtower.config import Fleet, Service
from watchtower.errors import ProbeError
from watchtower.inventory.feeds import (
    FeedError,
    Upstream,
    behind_summary,
    load_release_feed,
    update_release_feed,
    upstream_facts,
)
from watchtower.inventory.versions import running_version
from watchtower.net.dns import Resolver, Server
from watchtower.net.http import HttpClient
from watchtower.probe.api import ProbeContext
from watchtower.probe.clients import SweepClients

FEEDS = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
TOKEN = "s3cr3t"

ROUTES: dict[str, Any] = {
    "/api/v2/instance": {"domain": "social.test", "version": "4.3.2"},
    "/old/api/v1/instance": {"uri": "old.test", "version": "3.5.19"},
    "/api/v1/config": {"serverVersion": "6.3.0", "instance": {"name": "video"}},
    "/.well-known/nodeinfo": {"links": [
        {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": "/nodeinfo/2.0"},
        {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": "/nodeinfo/2.1"}]},
    "/nodeinfo/2.0": {"version": "2.0", "software": {"name": "pixelfed", "version": "0.11.0"}},
    "/nodeinfo/2.1": {"version": "2.1", "software": {"name": "pixelfed", "version": "0.12.4"}},
    "/_matrix/federation/v1/version": {"server": {"name": "Synapse", "version": "1.120.0"}},
    "/v1only/v1/status": {"node": "abcd" * 16, "garageVersion": "v0.9.4"},
    "/gh/releases": [
        {"tag_name": "v4.4.0-rc.1", "published_at": "2025-01-20T00:00:00Z", "prerelease": True},
        {"tag_name": "v4.3.2", "published_at": "2024-12-03T10:00:00Z", "prerelease": False},
        {"tag_name": "v4.3.1", "published_at": "2024-10-21T10:00:00Z", "prerelease": False},
        {"tag_name": "draft", "published_at": None, "draft": True}],
}
GARAGE_V2 = {"layoutVersion": 3, "nodes": [
    {"id": "a" * 64, "isUp": True, "draining": False, "hostname": "g1", "garageVersion": "v1.1.0"},
    {"id": "b" * 64, "isUp": True, "draining": False, "hostname": "g2", "garageVersion": "v1.1.0"},
    {"id": "c" * 64, "isUp": False, "draining": False, "hostname": "g3",
     "garageVersion": "v1.0.1"}]}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        body: Any = ROUTES.get(path)
        if path == "/v2/GetClusterStatus":
            body = GARAGE_V2 if self.headers.get("Authorization") == f"Bearer {TOKEN}" else None
            if body is None:
                return self._send(403, {"code": "AccessDenied"})
        if body is None:
            return self._send(404, {"error": "not found"})
        return self._send(200, body)

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def ctx() -> Iterator[ProbeContext]:
    fleet = Fleet.model_validate({"probe": {"nameservers": ["127.0.0.1:9"], "dns_timeout": 1,
                                            "http_timeout": 5}})
    with SweepClients(fleet) as clients:
        yield clients.context(time.monotonic() + 10)


@pytest.mark.parametrize(("kind", "path", "version", "source_end"), [
    ("mastodon", "", "4.3.2", "/api/v2/instance"),
    ("mastodon", "/old", "3.5.19", "/old/api/v1/instance"),  # fallback for Mastodon < 4
    ("peertube", "", "6.3.0", "/api/v1/config"),
    ("pixelfed", "", "0.12.4", "/nodeinfo/2.1"),  # the highest 2.x schema wins
    ("synapse", "", "1.120.0", "/_matrix/federation/v1/version"),
])
def test_running_version_readers(ctx: ProbeContext, base_url: str, kind: str, path: str,
                                 version: str, source_end: str) -> None:
    service = Service(name="s", kind=kind, base_url=base_url + path)
    got = running_version(ctx, service)
    assert got["version"] == version
    assert got["source"].endswith(source_end)


def test_garage_versions_by_node_with_token(ctx: ProbeContext, base_url: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WT_GARAGE_TOKEN", TOKEN)
    service = Service.model_validate({"name": "s3", "kind": "garage", "base_url": base_url,
                                      "admin_url": base_url,
                                      "admin_token": {"$env": "WT_GARAGE_TOKEN"}})
    got = running_version(ctx, service)
    assert got["version"] == "v1.1.0"  # what most nodes run
    assert [n["version"] for n in got["nodes"]] == ["v1.1.0", "v1.1.0", "v1.0.1"]
    v1 = service.model_copy(update={"admin_url": base_url + "/v1only"})
    assert running_version(ctx, v1)["version"] == "v0.9.4"  # v1 API fallback
    monkeypatch.setenv("WT_GARAGE_TOKEN", "wrong")
    with pytest.raises(ProbeError, match="HTTP 403"):
        running_version(ctx, service)


def test_reader_errors_are_probe_errors(ctx: ProbeContext, base_url: str) -> None:
    with pytest.raises(ProbeError, match="HTTP 404"):
        running_version(ctx, Service(name="s", kind="peertube", base_url=base_url + "/nope"))


def test_release_feed_reading_and_behind() -> None:
    feed = load_release_feed(FEEDS / "releases.json")
    assert feed["mastodon"]["version"] == "4.3.2"
    up = upstream_facts(feed["mastodon"], "4.3.0")
    assert [r["version"] for r in up["newer"]] == ["4.3.2", "4.3.1"]
    text = behind_summary("4.3.0", up, dt.date(2025, 2, 1))
    assert text == ("4.3.0 is 2 releases behind upstream 4.3.2 (a newer release available "
                    "for 103 days)")
    assert behind_summary("4.3.2", upstream_facts(feed["mastodon"], "4.3.2"),
                          dt.date(2025, 2, 1)) is None
    up = upstream_facts(feed["synapse"], "1.120.0")  # no history: at least one behind
    assert "at least 1 release behind upstream 1.121.1" in str(
        behind_summary("1.120.0", up, dt.date(2025, 1, 1)))


@pytest.mark.parametrize("doc", [[], {"software": {"x": {"date": "2025-01-01"}}},
                                 {"software": {"x": {"version": "1", "date": "soon"}}}])
def test_malformed_feeds_are_refused(tmp_path: Path, doc: Any) -> None:
    path = tmp_path / "f.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(FeedError):
        load_release_feed(path)


def test_update_from_a_releases_api_merges_and_keeps_unreached(
        tmp_path: Path, base_url: str) -> None:
    dest = tmp_path / "feed.json"
    dest.write_text((FEEDS / "releases.json").read_text())
    http = HttpClient(Resolver([Server("127.0.0.1", 9)], 1.0), timeout=5)
    try:
        updated, problems = update_release_feed(dest, http, {
            "mastodon": Upstream(base_url + "/gh/releases", "page"),
            "peertube": Upstream("http://127.0.0.1:9/closed", "page")}, timeout=2)
    finally:
        http.close()
    assert updated == ["mastodon"] and "peertube" in problems
    feed = load_release_feed(dest)
    assert feed["mastodon"]["version"] == "4.3.2"  # rc and drafts skipped
    assert [r["version"] for r in feed["mastodon"]["releases"]] == ["4.3.2", "4.3.1"]
    assert feed["garage"]["version"] == "1.1.0"  # kept from the old file


def test_update_with_no_upstream_reachable_says_what_to_do(tmp_path: Path) -> None:
    http = HttpClient(Resolver([Server("127.0.0.1", 9)], 1.0), timeout=2)
    try:
        with pytest.raises(FeedError, match=r"unchanged; offline, install a prepared feed"):
            update_release_feed(tmp_path / "f.json", http,
                                {"mastodon": Upstream("http://127.0.0.1:9/x", "p")}, timeout=1)
    finally:
        http.close()
    assert not (tmp_path / "f.json").exists()


def test_cli_feeds_update_from_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[feeds]\nrelease = "state/releases.json"\n')
    assert main(["feeds", "update", "-c", str(fleet), "--from",
                 str(FEEDS / "releases.json")]) == 0
    assert "garage, mastodon, synapse" in capsys.readouterr().out
    assert load_release_feed(tmp_path / "state" / "releases.json")["mastodon"]["version"]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["feeds", "update", "-c", str(fleet), "--from", str(bad)]) == 1
    assert "error:" in capsys.readouterr().err
    (tmp_path / "nofeed.toml").write_text("")
    assert main(["feeds", "update", "-c", str(tmp_path / "nofeed.toml")]) == 2
