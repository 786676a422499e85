"""Matrix stand-ins: the delegation files a server name's web host publishes, and a federation
endpoint that answers like Synapse's for the demo, where running Synapse itself is not wanted.

The key server response is signed for real (ed25519, via the `signedjson` library Synapse itself
uses), so the matrix.keys check verifies genuine signatures; its faults each break exactly one
property (expiry, name, signature, key type) while keeping the rest correct.

`signedjson` is imported when a stand-in is built, not when this module is, so the registry of
apps stays importable where that optional dependency is missing.
"""

from __future__ import annotations

import hmac
import secrets
import string
import time
from typing import TYPE_CHECKING, Any, ClassVar

from watchtower.lab.apps.common import (
    Fault,
    LabApp,
    Request,
    Response,
    json_response,
    method_not_allowed,
    older_version,
    text_response,
)

if TYPE_CHECKING:
    from signedjson.types import SigningKey, VerifyKey

DAY_MS = 24 * 3600 * 1000
KEY_VALIDITY_MS = 7 * DAY_MS

CLIENT_SPEC_VERSIONS = [
    "r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1",
    "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11",
    "v1.12",
]

_CORS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS"),
    ("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization, Date"),
]


def _host_of(host_port: str) -> str:
    """`matrix.example.test:8448` -> `matrix.example.test`; `[::1]:8448` -> `[::1]`."""
    if host_port.startswith("["):
        return host_port[: host_port.find("]") + 1] or host_port
    return host_port.partition(":")[0] if host_port.count(":") == 1 else host_port


def synapse_metrics(server_name: str, faults: frozenset[str]) -> Response:
    """The federation-sender part of Synapse's /_synapse/metrics (names and labels from
    synapse/federation/sender/__init__.py and synapse/metrics/__init__.py)."""
    now_ms = int(time.time() * 1000)
    backlog = "federation-backlog" in faults
    label = f'server_name="{server_name}"'
    sender = f'name="federation_sender",{label}'
    rows = [
        ("synapse_federation_transaction_queue_pending_pdus", label, 25000 if backlog else 0),
        ("synapse_federation_transaction_queue_pending_edus", label, 300 if backlog else 2),
        ("synapse_event_persisted_position", label, 51234),
        ("synapse_event_processing_positions", sender, 48000 if backlog else 51234),
        ("synapse_event_processing_last_ts", sender, now_ms - (2400_000 if backlog else 800)),
        ("synapse_event_processing_lag", sender, 2400_000 if backlog else 80),
    ]
    lines = []
    for name, labels, value in rows:
        lines += [f"# TYPE {name} gauge", f"{name}{{{labels}}} {float(value)}"]
    return text_response("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")


def destinations(faults: frozenset[str]) -> dict[str, Any]:
    """The admin API's destination list (docs/usage/administration/admin_api/federation.md)."""
    now_ms = int(time.time() * 1000)
    failing = 9 if "destinations-failing" in faults else 1
    rows = []
    for i in range(12):
        down = i < failing
        rows.append({"destination": f"peer{i:02d}.example.org",
                     "retry_last_ts": now_ms - 60_000 if down else 0,
                     "retry_interval": 3_600_000 if down else 0,
                     "failure_ts": now_ms - (i + 1) * 86_400_000 if down else None,
                     "last_successful_stream_ordering": None if down else 50000 + i})
    return {"destinations": rows, "total": len(rows)}


def _unrecognized() -> Response:
    return json_response({"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}, 404,
                         content_type="application/json", headers=_CORS)


class MatrixDelegationApp(LabApp):
    """`/.well-known/matrix/server` and `/.well-known/matrix/client` on the server name's host.

    `delegated_to` is the federation `host:port` (default `matrix.<server_name>:443`);
    `client_base_url` defaults to `https://` plus the delegated host.
    """

    FAULTS: ClassVar[tuple[Fault, ...]] = (
        Fault("wellknown-missing", "both .well-known/matrix files answer 404"),
        Fault("wellknown-invalid-json", "both .well-known/matrix files are broken JSON"),
    )

    def __init__(
        self,
        server_name: str,
        delegated_to: str | None = None,
        client_base_url: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.server_name = server_name.lower()
        self.delegated_to = delegated_to or f"matrix.{self.server_name}:443"
        self.client_base_url = client_base_url or f"https://{_host_of(self.delegated_to)}"
        self.hosts = (self.server_name,)

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        if req.method not in ("GET", "HEAD"):
            return method_not_allowed()
        if req.path == "/.well-known/matrix/server":
            data: dict[str, Any] = {"m.server": self.delegated_to}
        elif req.path == "/.well-known/matrix/client":
            data = {"m.homeserver": {"base_url": self.client_base_url}}
        else:
            return text_response("Not Found\n", 404)
        if "wellknown-missing" in faults:
            return text_response("Not Found\n", 404)
        headers = [("Access-Control-Allow-Origin", "*")]
        if "wellknown-invalid-json" in faults:
            key = next(iter(data))
            return text_response(f'{{"{key}": ', content_type="application/json",
                                 headers=headers)
        return json_response(data, content_type="application/json", headers=headers)


class MatrixFederationStandIn(LabApp):
    """The federation API surface of a homeserver, answering as Synapse does: server version,
    the server's signing keys (signed with a real ed25519 key kept in this object), the client
    API versions and `/health`."""

    FAULTS: ClassVar[tuple[Fault, ...]] = (
        Fault("keys-expired", "valid_until_ts lies a day in the past (still correctly signed)"),
        Fault("keys-expiring-soon", "valid_until_ts lies only 6 hours ahead"),
        Fault("keys-wrong-server-name", "keys published and signed under another server name"),
        Fault("keys-bad-signature", "the key response's signature does not verify"),
        Fault("keys-no-ed25519", "the key response lists no ed25519 verify key"),
        Fault("version-missing", "the federation version answer lacks server.version"),
        Fault("version-lag", "reports a version older than the declared one"),
        Fault("federation-backlog", "/_synapse/metrics: 25,000 PDUs queued and the federation "
              "sender 40 minutes behind the event stream"),
        Fault("destinations-failing", "admin API: 9 of 12 destinations failing for days"),
    )

    def __init__(
        self,
        server_name: str,
        version: str = "1.120.2",
        *,
        key_version: str | None = None,
        admin_token: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.admin_token = admin_token
        from signedjson.key import generate_signing_key

        self.server_name = server_name.lower()
        self.version = version
        if key_version is None:  # Synapse names its generated keys a_XXXX
            alphabet = string.ascii_letters + string.digits
            key_version = "a_" + "".join(secrets.choice(alphabet) for _ in range(4))
        self.signing_key: SigningKey = generate_signing_key(key_version)
        # Same key id, different key: what a server signing with a stale or foreign key sends.
        self._impostor_key: SigningKey = generate_signing_key(key_version)

    @property
    def key_id(self) -> str:
        return f"{self.signing_key.alg}:{self.signing_key.version}"

    @property
    def verify_key(self) -> VerifyKey:
        from signedjson.key import get_verify_key

        return get_verify_key(self.signing_key)

    def server_keys(self, faults: frozenset[str], now_ms: int | None = None) -> dict[str, Any]:
        """The `/_matrix/key/v2/server` body, signed as Synapse signs it."""
        from signedjson.key import encode_verify_key_base64
        from signedjson.sign import sign_json

        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if "keys-expired" in faults:
            valid_until = now_ms - DAY_MS
        elif "keys-expiring-soon" in faults:
            valid_until = now_ms + DAY_MS // 4
        else:
            valid_until = now_ms + KEY_VALIDITY_MS
        name = self.server_name
        if "keys-wrong-server-name" in faults:
            name = f"wrong.{self.server_name}"
        verify_keys: dict[str, Any] = {}
        if "keys-no-ed25519" not in faults:
            verify_keys[self.key_id] = {"key": encode_verify_key_base64(self.verify_key)}
        body: dict[str, Any] = {
            "old_verify_keys": {},
            "server_name": name,
            "valid_until_ts": valid_until,
            "verify_keys": verify_keys,
        }
        key = self._impostor_key if "keys-bad-signature" in faults else self.signing_key
        signed: dict[str, Any] = sign_json(body, name, key)
        return signed

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        if req.method == "OPTIONS":
            return text_response("", headers=_CORS)
        if req.method not in ("GET", "HEAD"):
            return method_not_allowed()
        path = req.path
        if path == "/_matrix/federation/v1/version":
            server: dict[str, str] = {"name": "Synapse"}
            if "version-missing" not in faults:
                lag = "version-lag" in faults
                server["version"] = older_version(self.version) if lag else self.version
            return json_response({"server": server}, content_type="application/json",
                                 headers=_CORS)
        if path == "/_matrix/key/v2/server" or path.startswith("/_matrix/key/v2/server/"):
            return json_response(self.server_keys(faults), content_type="application/json",
                                 headers=_CORS)
        if path == "/_matrix/client/versions":
            return json_response(
                {"versions": CLIENT_SPEC_VERSIONS,
                 "unstable_features": {"org.matrix.msc3827.stable": True}},
                content_type="application/json", headers=_CORS)
        if path == "/health":
            return text_response("OK", content_type="text/plain")
        if path == "/_synapse/metrics":
            return synapse_metrics(self.server_name, faults)
        if path == "/_synapse/admin/v1/federation/destinations":
            given = (req.header("Authorization") or "").removeprefix("Bearer ").strip()
            if self.admin_token is not None and not hmac.compare_digest(
                    given.encode(), self.admin_token.encode()):
                return json_response({"errcode": "M_UNKNOWN_TOKEN",
                                      "error": "Invalid access token passed."}, 401)
            return json_response(destinations(faults), content_type="application/json")
        return _unrecognized()
