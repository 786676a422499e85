"""storage.* checks: the S3 round trip against a real moto server (fixture `s3_server`), and
the admin-API checks against the Garage stand-in (v2 and v1) behind the lab's HTTPS front."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import watchtower.checks.storage as storage

from tests.integration.web.labnet import LabNet, labnet, run_check, target_of
from watchtower.lab.apps import GarageAdminApp, StaticSiteApp

TOKEN = "lab-admin-token-0123456789"


@pytest.fixture(scope="module")
def garage_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabNet, GarageAdminApp, GarageAdminApp]]:
    v2 = GarageAdminApp(TOKEN, api="v2")
    v1 = GarageAdminApp(TOKEN, api="v1")
    sites = {"garage.example.test": v2, "old.example.test": v1,
             "s3.example.test": StaticSiteApp("s3.example.test")}
    with labnet(tmp_path_factory.mktemp("garage"), sites) as net:
        yield net, v2, v1


def _service(net: LabNet, host: str, **extra: object) -> dict[str, object]:
    return {"name": host, "kind": "garage", "base_url": net.url(host),
            "admin_url": net.url(host), "admin_token": {"$env": "WT_TEST_GARAGE_TOKEN"}, **extra}


def _run(net: LabNet, check, host: str = "garage.example.test", **extra: object):  # type: ignore[no-untyped-def]
    fleet = net.fleet(services=[_service(net, host, **extra)])
    return run_check(fleet, check, target_of(fleet, host, "garage"), timeout=10)


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WT_TEST_GARAGE_TOKEN", TOKEN)


@pytest.mark.parametrize(("faults", "check", "status", "fragment"), [
    (set(), storage.Health, "ok", "256/256"),
    ({"degraded"}, storage.Health, "warn", "degraded"),
    ({"unavailable"}, storage.Health, "fail", "unavailable"),
    (set(), storage.Nodes, "ok", "3/3 nodes up"),
    ({"node-down"}, storage.Nodes, "warn", "86400"),
    ({"disk-low"}, storage.Nodes, "warn", "5% free"),
    ({"invalid-json"}, storage.Nodes, "fail", "invalid JSON"),
])
def test_admin_api_v2(garage_net, faults, check, status, fragment) -> None:  # type: ignore[no-untyped-def]
    net, v2, _ = garage_net
    v2.faults = faults
    try:
        result = _run(net, check())
    finally:
        v2.faults = set()
    assert result.status == status, result.summary
    assert fragment in result.summary
    assert TOKEN not in str(result.evidence)


def test_admin_api_v1_fallback_and_bad_token(garage_net, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    net, _, _ = garage_net
    result = _run(net, storage.Health(), "old.example.test")
    assert result.status == "ok", result.summary
    assert result.evidence["cluster"]["v2_answer"] == 400
    assert _run(net, storage.Nodes(), "old.example.test").status == "ok"
    monkeypatch.setenv("WT_TEST_GARAGE_TOKEN", "wrong")
    refused = _run(net, storage.Health())
    assert refused.status == "error" and "refused the token" in refused.summary


def test_s3_round_trip_against_moto(garage_net, s3_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    net, _, _ = garage_net
    s3_server.client().create_bucket(Bucket="probe")
    monkeypatch.setenv("WT_TEST_S3_AK", s3_server.access_key)
    monkeypatch.setenv("WT_TEST_S3_SK", s3_server.secret_key)
    # moto reads any dotted Host as a virtual-hosted bucket name, so the endpoint is its IP here
    extra = {"s3_endpoint": s3_server.endpoint_url, "s3_bucket": "probe",
             "s3_region": s3_server.region, "s3_access_key": {"$env": "WT_TEST_S3_AK"},
             "s3_secret_key": {"$env": "WT_TEST_S3_SK"}}
    result = _run(net, storage.RoundTrip(), **extra)
    assert result.status == "ok", result.summary
    steps = result.evidence["steps"]
    assert [s["step"] for s in steps] == ["put", "get", "delete"]
    assert all(s["ok"] and s["ms"] > 0 for s in steps)
    left = s3_server.client().list_objects_v2(Bucket="probe").get("KeyCount", 0)
    assert left == 0  # the canary is gone
    missing = _run(net, storage.RoundTrip(), **{**extra, "s3_bucket": "no-such-bucket"})
    assert missing.status == "fail" and "NoSuchBucket" in missing.summary


@pytest.mark.parametrize(("faults", "status", "fragment"), [
    (set(), "ok", "3 blocks queued for resync, none errored; data 60% free"),
    ({"blocks-erroring"}, "fail", "12 blocks could not be resynced"),
    ({"blocks-corrupt"}, "warn", "2 corrupted blocks"),
    ({"resync-behind"}, "warn", "250000 blocks queued"),
    ({"disk-low"}, "warn", "data volume 5% free"),
])
def test_blocks_from_metrics(garage_net, faults, status, fragment) -> None:  # type: ignore[no-untyped-def]
    net, v2, _ = garage_net
    v2.faults = faults
    try:
        result = _run(net, storage.Blocks())
    finally:
        v2.faults = set()
    assert result.status == status, result.summary
    assert fragment in result.summary


def test_blocks_metrics_token(garage_net, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    net, v2, _ = garage_net
    v2.metrics_token = "metrics-secret"
    monkeypatch.setenv("WT_TEST_METRICS_TOKEN", "metrics-secret")
    try:
        ok = _run(net, storage.Blocks(), metrics_token={"$env": "WT_TEST_METRICS_TOKEN"})
        refused = _run(net, storage.Blocks())
    finally:
        v2.metrics_token = None
    assert ok.status == "ok", ok.summary
    assert refused.status == "error" and "refused the token" in refused.summary
