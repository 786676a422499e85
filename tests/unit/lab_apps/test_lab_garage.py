"""The Garage admin API stand-in against the published v1 and v2 specifications."""

from __future__ import annotations

from typing import Any

import pytest

from watchtower.lab.apps import GarageAdminApp

from .shared_specs import (
    garage_v2_errors,
    load_json_spec,
    load_yaml_spec,
    missing_required,
    openapi_response_schema,
)
from .wsgi_client import Result, call

ADMIN = "http://127.0.0.1:3903"
TOKEN = "s3cr3t-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GARAGE_FAULTS = ["degraded", "node-down", "unavailable", "disk-low", "version-lag"]


def get(app: GarageAdminApp, path: str, headers: dict[str, str] | None = None) -> Result:
    return call(app, f"{ADMIN}{path}", headers=AUTH if headers is None else headers)


def check_v2(body: Any, path: str) -> None:
    spec = load_json_spec("garage/garage-admin-v2.json")
    schema = openapi_response_schema(spec, path)
    assert missing_required(body, schema, spec) == []
    assert garage_v2_errors(body, path) == []


def check_v1(body: Any, path: str) -> None:
    spec = load_yaml_spec("garage/garage-admin-v1.yml")
    assert spec["servers"][0]["url"].endswith("/v1/")  # paths below are served under /v1
    assert missing_required(body, openapi_response_schema(spec, path), spec) == []


@pytest.mark.parametrize("faults", [set(), *({f} for f in GARAGE_FAULTS)],
                         ids=["healthy", *GARAGE_FAULTS])
def test_v2_responses_follow_the_spec(faults: set[str]) -> None:
    app = GarageAdminApp(TOKEN, faults=faults)
    for path in ("/v2/GetClusterHealth", "/v2/GetClusterStatus"):
        result = get(app, path)
        assert result.status == 200 and result.header("Content-Type") == "application/json"
        check_v2(result.json(), path)
    for node in ("self", "*"):
        check_v2(get(app, f"/v2/GetNodeInfo?node={node}").json(), "/v2/GetNodeInfo")


@pytest.mark.parametrize("faults", [set(), *({f} for f in GARAGE_FAULTS)],
                         ids=["healthy", *GARAGE_FAULTS])
def test_v1_responses_follow_the_spec(faults: set[str]) -> None:
    app = GarageAdminApp(TOKEN, api="v1", faults=faults)
    check_v1(get(app, "/v1/health").json(), "/health")
    status = get(app, "/v1/status").json()
    check_v1(status, "/status")
    # and what Garage v1.x really sends besides the YAML's fields
    assert status["layoutVersion"] == 1 and len(status["nodes"]) == 3


def test_the_spec_check_catches_a_missing_field() -> None:
    spec = load_json_spec("garage/garage-admin-v2.json")
    body = get(GarageAdminApp(TOKEN), "/v2/GetClusterStatus").json()
    del body["nodes"][1]["isUp"]
    assert missing_required(body, openapi_response_schema(spec, "/v2/GetClusterStatus"),
                            spec) == ["$.nodes[1].isUp"]
    assert garage_v2_errors(body, "/v2/GetClusterStatus")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": TOKEN}],
                         ids=["no-token", "wrong-token", "not-bearer"])
def test_auth_is_required(headers: dict[str, str]) -> None:
    app = GarageAdminApp(TOKEN, api="both")
    for path in ("/v2/GetClusterHealth", "/v2/GetClusterStatus", "/v1/health", "/v1/status"):
        refused = get(app, path, headers)
        assert refused.status == 403, path  # what Garage answers (the specs name no status)
        error = refused.json()
        assert error["code"] == "AccessDenied" and error["path"] == path
    strict = GarageAdminApp(TOKEN, auth_failure_status=401)
    assert get(strict, "/v2/GetClusterHealth", headers).status == 401


def test_health_needs_no_token() -> None:
    result = get(GarageAdminApp(TOKEN), "/health", {})
    assert result.status == 200
    assert result.text.startswith("Garage is fully operational\n")
    assert "/v2/GetClusterHealth" in result.text
    assert "/v1/health" in get(GarageAdminApp(TOKEN, api="v1"), "/health", {}).text


def test_healthy_cluster() -> None:
    app = GarageAdminApp(TOKEN, version="v1.1.0", nodes=3)
    health = get(app, "/v2/GetClusterHealth").json()
    assert health == {"status": "healthy", "knownNodes": 3, "connectedNodes": 3,
                      "storageNodes": 3, "storageNodesOk": 3, "partitions": 256,
                      "partitionsQuorum": 256, "partitionsAllOk": 256}
    nodes = get(app, "/v2/GetClusterStatus").json()["nodes"]
    assert len({n["id"] for n in nodes}) == 3
    for node in nodes:
        assert len(node["id"]) == 64 and node["isUp"] is True
        assert node["garageVersion"] == "v1.1.0"
        assert node["role"]["capacity"] > 0 and node["role"]["zone"]
        free = node["dataPartition"]["available"] / node["dataPartition"]["total"]
        assert free > 0.1


@pytest.mark.parametrize("fault", ["degraded", "node-down"])
def test_one_node_down_degrades(fault: str) -> None:
    app = GarageAdminApp(TOKEN, faults={fault})
    health = get(app, "/v2/GetClusterHealth").json()
    assert health["status"] == "degraded"
    assert health["connectedNodes"] == health["storageNodesOk"] == 2
    assert health["partitionsQuorum"] == 256 and health["partitionsAllOk"] < 256
    down = [n for n in get(app, "/v2/GetClusterStatus").json()["nodes"] if not n["isUp"]]
    assert len(down) == 1 and down[0]["addr"] is None
    expected_age = 86400 if fault == "node-down" else 25
    assert down[0]["lastSeenSecsAgo"] == expected_age
    assert get(app, "/health", {}).status == 200
    info = get(app, "/v2/GetNodeInfo?node=*").json()
    assert list(info["error"]) == [down[0]["id"]] and len(info["success"]) == 2


def test_unavailable() -> None:
    app = GarageAdminApp(TOKEN, faults={"unavailable"})
    health = get(app, "/v2/GetClusterHealth").json()
    assert health["status"] == "unavailable"
    assert health["partitionsQuorum"] < health["partitions"]
    result = get(app, "/health", {})
    assert result.status == 503 and result.text.startswith("Quorum is not available")
    assert get(app, "/v2/GetClusterStatus").status == 200  # the admin API still answers


def test_bigger_cluster_keeps_numbers_consistent() -> None:
    app = GarageAdminApp(TOKEN, nodes=6, faults={"node-down"})
    health = get(app, "/v2/GetClusterHealth").json()
    assert health["status"] == "degraded"
    assert 0 < health["partitionsAllOk"] < 256 and health["partitionsQuorum"] == 256
    lost = GarageAdminApp(TOKEN, nodes=6, faults={"unavailable"})
    health = get(lost, "/v2/GetClusterHealth").json()
    assert health["status"] == "unavailable" and 0 < health["partitionsQuorum"] < 256


def test_disk_low() -> None:
    nodes = get(GarageAdminApp(TOKEN, faults={"disk-low"}), "/v2/GetClusterStatus").json()[
        "nodes"]
    low = [n for n in nodes
           if n["dataPartition"]["available"] / n["dataPartition"]["total"] < 0.10]
    assert len(low) == 1


def test_version_lag() -> None:
    app = GarageAdminApp(TOKEN, version="v1.1.0", api="both", faults={"version-lag"})
    assert {n["garageVersion"] for n in get(app, "/v2/GetClusterStatus").json()["nodes"]} == {
        "v1.0.0"}
    assert get(app, "/v1/status").json()["garageVersion"] == "v1.0.0"
    info = get(app, "/v2/GetNodeInfo?node=self").json()["success"]
    assert [v["garageVersion"] for v in info.values()] == ["v1.0.0"]


def test_api_selection() -> None:
    v1 = GarageAdminApp(TOKEN, api="v1")
    assert get(v1, "/v2/GetClusterHealth").status == 400
    assert get(v1, "/v1/health").status == 200
    v2 = GarageAdminApp(TOKEN)
    assert get(v2, "/v1/health").status == 400
    both = GarageAdminApp(TOKEN, api="both")
    assert get(both, "/v1/health").json() == get(both, "/v2/GetClusterHealth").json()
    with pytest.raises(ValueError):
        GarageAdminApp(TOKEN, api="v3")  # type: ignore[arg-type]
    assert get(v2, "/v2/GetNodeInfo?node=nope").status == 400
