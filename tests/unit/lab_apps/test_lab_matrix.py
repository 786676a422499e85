"""Matrix delegation files and the federation stand-in, with real ed25519 signatures."""

from __future__ import annotations

import time
from typing import Any

import pytest
from signedjson.key import decode_verify_key_base64
from signedjson.sign import SignatureVerifyException, verify_signed_json

from watchtower.lab.apps import MatrixDelegationApp, MatrixFederationStandIn

from .wsgi_client import call

NAME = "example.test"
FED = "https://matrix.example.test:8448"
WEEK_MS = 7 * 24 * 3600 * 1000


def keys(app: MatrixFederationStandIn) -> dict[str, Any]:
    result = call(app, f"{FED}/_matrix/key/v2/server")
    assert result.status == 200 and result.header("Content-Type") == "application/json"
    body: dict[str, Any] = result.json()
    return body


def verify_as_a_peer_would(body: dict[str, Any], server_name: str) -> None:
    """What matrix.keys does: take the ed25519 keys the response publishes and check the
    response's own signature by `server_name` with them."""
    ed_keys = {kid: v for kid, v in body["verify_keys"].items() if kid.startswith("ed25519:")}
    if not ed_keys:
        raise LookupError("no ed25519 verify key")
    for key_id, value in ed_keys.items():
        algorithm, version = key_id.split(":", 1)
        verify_key = decode_verify_key_base64(algorithm, version, value["key"])
        verify_signed_json(body, server_name, verify_key)


def test_delegation_files() -> None:
    app = MatrixDelegationApp(NAME, delegated_to="matrix.example.test:8448")
    assert app.hosts == (NAME,)
    server = call(app, "https://example.test/.well-known/matrix/server")
    assert server.json() == {"m.server": "matrix.example.test:8448"}
    client = call(app, "https://example.test/.well-known/matrix/client")
    assert client.json() == {"m.homeserver": {"base_url": "https://matrix.example.test"}}
    assert client.header("Access-Control-Allow-Origin") == "*"
    default = MatrixDelegationApp(NAME)
    assert call(default, "https://example.test/.well-known/matrix/server").json() == {
        "m.server": "matrix.example.test:443"}
    custom = MatrixDelegationApp(NAME, client_base_url="https://chat.example.test")
    assert call(custom, "https://example.test/.well-known/matrix/client").json()[
        "m.homeserver"]["base_url"] == "https://chat.example.test"


def test_delegation_faults() -> None:
    missing = MatrixDelegationApp(NAME, faults={"wellknown-missing"})
    broken = MatrixDelegationApp(NAME, faults={"wellknown-invalid-json"})
    for path in ("/.well-known/matrix/server", "/.well-known/matrix/client"):
        assert call(missing, f"https://example.test{path}").status == 404
        result = call(broken, f"https://example.test{path}")
        assert result.status == 200
        with pytest.raises(ValueError):
            result.json()


def test_federation_version() -> None:
    app = MatrixFederationStandIn(NAME, version="1.120.2")
    assert call(app, f"{FED}/_matrix/federation/v1/version").json() == {
        "server": {"name": "Synapse", "version": "1.120.2"}}
    missing = MatrixFederationStandIn(NAME, faults={"version-missing"})
    assert "version" not in call(missing, f"{FED}/_matrix/federation/v1/version").json()[
        "server"]
    lag = MatrixFederationStandIn(NAME, version="1.120.2", faults={"version-lag"})
    assert call(lag, f"{FED}/_matrix/federation/v1/version").json()["server"][
        "version"] == "1.120.1"


def test_server_keys_verify() -> None:
    app = MatrixFederationStandIn(NAME)
    body = keys(app)
    assert body["server_name"] == NAME
    assert list(body["verify_keys"]) == [app.key_id]
    assert app.key_id.startswith("ed25519:a_")
    verify_as_a_peer_would(body, NAME)
    verify_signed_json(body, NAME, app.verify_key)  # the key the object keeps
    now = time.time() * 1000
    assert now + WEEK_MS - 60_000 < body["valid_until_ts"] <= now + WEEK_MS + 60_000
    # one key per object: two fetches are signed by the same key
    assert keys(app)["verify_keys"] == body["verify_keys"]
    assert call(app, f"{FED}/_matrix/key/v2/server/{app.key_id}").status == 200


def test_bad_signature_fails_verification() -> None:
    body = keys(MatrixFederationStandIn(NAME, faults={"keys-bad-signature"}))
    assert body["signatures"][NAME]  # a signature is there, it is just wrong
    with pytest.raises(SignatureVerifyException):
        verify_as_a_peer_would(body, NAME)


def test_expired_keys_are_still_correctly_signed() -> None:
    body = keys(MatrixFederationStandIn(NAME, faults={"keys-expired"}))
    assert body["valid_until_ts"] < time.time() * 1000
    verify_as_a_peer_would(body, NAME)


def test_keys_expiring_soon() -> None:
    body = keys(MatrixFederationStandIn(NAME, faults={"keys-expiring-soon"}))
    ahead = body["valid_until_ts"] - time.time() * 1000
    assert 0 < ahead < 24 * 3600 * 1000
    verify_as_a_peer_would(body, NAME)


def test_wrong_server_name() -> None:
    body = keys(MatrixFederationStandIn(NAME, faults={"keys-wrong-server-name"}))
    assert body["server_name"] != NAME
    with pytest.raises(SignatureVerifyException):
        verify_as_a_peer_would(body, NAME)  # nothing signed by the expected name
    verify_as_a_peer_would(body, body["server_name"])


def test_no_ed25519_key() -> None:
    body = keys(MatrixFederationStandIn(NAME, faults={"keys-no-ed25519"}))
    assert not [k for k in body["verify_keys"] if k.startswith("ed25519:")]
    with pytest.raises(LookupError):
        verify_as_a_peer_would(body, NAME)


def test_client_versions_health_and_unknown() -> None:
    app = MatrixFederationStandIn(NAME)
    versions = call(app, f"{FED}/_matrix/client/versions").json()["versions"]
    assert "v1.1" in versions
    assert call(app, f"{FED}/health").text == "OK"
    unknown = call(app, f"{FED}/_matrix/nothing")
    assert unknown.status == 404 and unknown.json()["errcode"] == "M_UNRECOGNIZED"
