"""fedi.queues against the lab stand-ins of Mastodon's exporter, PeerTube's jobs API and
Pixelfed's Horizon (watchtower/lab/apps/queues.py, shaped after the cited sources), behind the
lab's HTTPS front, one fault at a time, and with the credentials refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import watchtower.checks.queues as queues

from tests.integration.web.labnet import LabNet, labnet, run_check, target_of
from watchtower.lab.apps import MastodonApp, PeerTubeApp, PixelfedApp

SOCIAL, VIDEO, PHOTOS = "social.example.test", "video.example.test", "photos.example.test"
TOKEN = "lab-queue-token-0123456789"
COOKIE = f"laravel_session={TOKEN}"


@pytest.fixture(scope="module")
def queue_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabNet, dict[str, Any]]]:
    apps = {"mastodon": MastodonApp(SOCIAL), "peertube": PeerTubeApp(VIDEO, admin_token=TOKEN),
            "pixelfed": PixelfedApp(PHOTOS, horizon_cookie=COOKIE)}
    sites = {SOCIAL: apps["mastodon"], VIDEO: apps["peertube"], PHOTOS: apps["pixelfed"]}
    with labnet(tmp_path_factory.mktemp("queues"), sites) as net:  # type: ignore[arg-type]
        yield net, apps


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WT_TEST_QUEUE_TOKEN", TOKEN)
    monkeypatch.setenv("WT_TEST_HORIZON_COOKIE", COOKIE)


def _service(net: LabNet, kind: str) -> dict[str, Any]:
    host = {"mastodon": SOCIAL, "peertube": VIDEO, "pixelfed": PHOTOS}[kind]
    access: dict[str, Any] = {
        "mastodon": {"metrics_url": net.url(SOCIAL, "/metrics")},
        "peertube": {"admin_token": {"$env": "WT_TEST_QUEUE_TOKEN"}},
        "pixelfed": {"admin_cookie": {"$env": "WT_TEST_HORIZON_COOKIE"}},
    }[kind]
    return {"name": host, "kind": kind, "base_url": net.url(host), **access}


def _run(net: LabNet, kind: str) -> Any:
    service = _service(net, kind)
    fleet = net.fleet(services=[service])
    return run_check(fleet, queues.FediQueues(), target_of(fleet, service["name"], kind))


@pytest.mark.parametrize(("kind", "faults", "status", "fragment"), [
    ("mastodon", set(), "ok", "6 Sidekiq queues"),
    ("mastodon", {"queue-behind"}, "fail", "Sidekiq queue push (4000 jobs) 600 s behind"),
    ("mastodon", {"jobs-failing"}, "warn", "9500 dead jobs"),
    ("peertube", set(), "ok", "2 jobs waiting"),
    ("peertube", {"queue-behind"}, "fail", "oldest waiting job (video-transcoding)"),
    ("peertube", {"jobs-failing"}, "warn", "40 failed jobs (video-transcoding 40)"),
    ("pixelfed", set(), "ok", "Horizon running, 3 processes"),
    ("pixelfed", {"horizon-stopped"}, "fail", "Horizon is not running"),
    ("pixelfed", {"queue-behind"}, "fail", "Horizon queue redis:inbox 600 s behind"),
    ("pixelfed", {"jobs-failing"}, "warn", "60 failed jobs in the last 10080 minutes"),
])
def test_queue_faults(queue_net, kind, faults, status, fragment) -> None:  # type: ignore[no-untyped-def]
    net, apps = queue_net
    apps[kind].faults = faults
    try:
        result = _run(net, kind)
    finally:
        apps[kind].faults = set()
    assert result.status == status, result.summary
    assert fragment in result.summary
    assert TOKEN not in str(result.evidence)


@pytest.mark.parametrize("kind", ["peertube", "pixelfed"])
def test_refused_credentials_are_an_error(queue_net, kind, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    net, _ = queue_net
    monkeypatch.setenv("WT_TEST_QUEUE_TOKEN", "wrong")
    monkeypatch.setenv("WT_TEST_HORIZON_COOKIE", "laravel_session=wrong")
    result = _run(net, kind)
    assert result.status == "error" and "refused the credentials" in result.summary


def test_thresholds_are_settings(queue_net) -> None:  # type: ignore[no-untyped-def]
    """A 600 s queue is only a warning when the fail threshold is an hour."""
    net, apps = queue_net
    apps["mastodon"].faults = {"queue-behind"}
    try:
        fleet = net.fleet(services=[_service(net, "mastodon")],
                          queues={"latency_warn": 300, "latency_fail": 3600})
        result = run_check(fleet, queues.FediQueues(), target_of(fleet, SOCIAL, "mastodon"))
    finally:
        apps["mastodon"].faults = set()
    assert result.status == "warn" and "warn at 300 s" in result.summary, result.summary
