"""A Garage admin API stand-in (storage.* and drift.version checks), following the published
specifications: admin API v2 (OpenAPI 3.1, `garage-admin-v2.json`) and v1 (`garage-admin-v1.yml`,
served under `/v1/`).

Endpoints, per `api`:
- always: `GET /health` (no auth; 200 text while a write quorum exists, 503 when unavailable)
  and `GET /metrics` (Prometheus text; a bearer `metrics_token` when one is set)
- v2: `GET /v2/GetClusterHealth`, `GET /v2/GetClusterStatus`, `GET /v2/GetNodeInfo?node=`
- v1: `GET /v1/health`, `GET /v1/status`

Everything but `/health` needs `Authorization: Bearer <token>`. The specs declare bearer auth but
no status for a refused token; real Garage (v1.x and v2.x alike) answers 403 with an
`AccessDenied` JSON error, so that is the default here (`auth_failure_status` changes it).

`/v1/status` carries both the fields the v1 YAML requires (`knownNodes`, `layout`, ...) and the
ones Garage v1.x really sends (`layoutVersion`, `nodes`): the YAML was never updated past v0.9.

Cluster numbers stay consistent with each other the way Garage computes them: a node that is down
lowers connectedNodes and storageNodesOk, the partitions it replicates lose `partitionsAllOk`, and
once a write quorum is lost for some partitions the status is `unavailable`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from math import comb
from typing import Any, ClassVar, Literal

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

PARTITIONS = 256
GB = 1_000_000_000
DATA_TOTAL = 500 * GB
META_TOTAL = 50 * GB
RUST_VERSION = "1.81.0"
FEATURES = ["k2v", "lmdb", "sqlite", "metrics", "bundled-libs"]

ApiSet = Literal["v1", "v2", "both"]


@dataclass
class _Node:
    id: str
    addr: str
    hostname: str
    zone: str
    capacity: int
    is_up: bool
    last_seen_secs_ago: int | None
    data_available: int
    meta_available: int
    version: str


class GarageAdminApp(LabApp):
    """Garage's admin API for a cluster of `nodes` storage nodes; node 0 answers the requests."""

    FAULTS: ClassVar[tuple[Fault, ...]] = (
        Fault("degraded", "one storage node disconnected for 25 s: health degraded"),
        Fault("node-down", "one storage node gone for a day (lastSeenSecsAgo 86400): degraded"),
        Fault("unavailable", "enough nodes down to lose write quorum: health unavailable, 503"),
        Fault("disk-low", "the answering node's data partition has 5 % free"),
        Fault("version-lag", "every node runs a version older than the declared one"),
        Fault("blocks-erroring", "/metrics: 12 blocks failed to resync "
              "(block_resync_errored_blocks)"),
        Fault("blocks-corrupt", "/metrics: 2 corrupted blocks found (block_corruption_counter)"),
        Fault("resync-behind", "/metrics: 250,000 blocks queued for resync"),
    )

    def __init__(
        self,
        token: str,
        version: str = "v1.1.0",
        nodes: int = 3,
        api: ApiSet = "v2",
        *,
        auth_failure_status: int = 403,
        region: str = "garage",
        cluster_seed: str = "lab",
        metrics_token: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if nodes < 1:
            raise ValueError("a Garage cluster needs at least one node")
        if api not in ("v1", "v2", "both"):
            raise ValueError(f"api must be v1, v2 or both, not {api!r}")
        self.token = token
        self.version = version
        self.nodes = nodes
        self.api: ApiSet = api
        self.auth_failure_status = auth_failure_status
        self.region = region
        self.cluster_seed = cluster_seed
        self.metrics_token = metrics_token
        self.replication_factor = min(3, nodes)

    # -- cluster model ------------------------------------------------------------------------

    @property
    def quorum(self) -> int:
        return self.replication_factor // 2 + 1

    def node_id(self, index: int) -> str:
        return hashlib.sha256(f"garage:{self.cluster_seed}:{index}".encode()).hexdigest()

    def _down_count(self, faults: frozenset[str]) -> int:
        if "unavailable" in faults:
            # losing this many replicas of one partition leaves fewer than a quorum
            return min(self.nodes, self.replication_factor - self.quorum + 1)
        if "degraded" in faults or "node-down" in faults:
            return 1 if self.nodes > 1 else 0
        return 0

    def cluster(self, faults: frozenset[str]) -> list[_Node]:
        down = self._down_count(faults)
        version = older_version(self.version) if "version-lag" in faults else self.version
        result = []
        for i in range(self.nodes):
            is_up = i < self.nodes - down or (i == 0 and self.nodes > 1)
            if is_up:
                last_seen: int | None = 1 + i % 3
            else:
                last_seen = 86400 if "node-down" in faults else 25
            data_free = DATA_TOTAL * 60 // 100
            if i == 0 and "disk-low" in faults:
                data_free = DATA_TOTAL * 5 // 100
            result.append(_Node(
                id=self.node_id(i),
                addr=f"10.42.0.{i + 1}:3901",
                hostname=f"garage{i + 1}",
                zone=f"dc{i % 3 + 1}",
                capacity=100 * GB,
                is_up=is_up,
                last_seen_secs_ago=last_seen,
                data_available=data_free,
                meta_available=META_TOTAL * 80 // 100,
                version=version,
            ))
        return result

    def health(self, faults: frozenset[str]) -> dict[str, Any]:
        """GetClusterHealthResponse, computed from the node list as Garage does."""
        nodes = self.cluster(faults)
        n = len(nodes)
        down = sum(1 for node in nodes if not node.is_up)
        rf = self.replication_factor
        lose_quorum = rf - self.quorum + 1
        # Partitions sit on rf distinct nodes chosen evenly: count those touching the down set.
        total_sets = comb(n, rf)
        all_ok = round(PARTITIONS * comb(n - down, rf) / total_sets)
        without_quorum = sum(
            comb(down, k) * comb(n - down, rf - k) for k in range(lose_quorum, rf + 1)
        )
        quorum_ok = PARTITIONS - round(PARTITIONS * without_quorum / total_sets)
        if down == 0:
            status = "healthy"
        elif quorum_ok == PARTITIONS:
            status = "degraded"
        else:
            status = "unavailable"
        connected = max(1, n - down)  # the answering node is always connected to itself
        return {
            "status": status,
            "knownNodes": n,
            "connectedNodes": connected,
            "storageNodes": n,
            "storageNodesOk": n - down,
            "partitions": PARTITIONS,
            "partitionsQuorum": quorum_ok,
            "partitionsAllOk": all_ok,
        }

    @staticmethod
    def _free(available: int, total: int) -> dict[str, int]:
        return {"available": available, "total": total}

    def status_v2(self, faults: frozenset[str]) -> dict[str, Any]:
        """GetClusterStatusResponse of admin API v2."""
        nodes = [
            {
                "id": node.id,
                "garageVersion": node.version,
                # Garage knows a peer's address only while connected to it; the rest of a
                # node's status is the last one it gossiped.
                "addr": node.addr if node.is_up else None,
                "hostname": node.hostname,
                "isUp": node.is_up,
                "lastSeenSecsAgo": node.last_seen_secs_ago,
                "role": {"zone": node.zone, "tags": [], "capacity": node.capacity},
                "draining": False,
                "dataPartition": self._free(node.data_available, DATA_TOTAL),
                "metadataPartition": self._free(node.meta_available, META_TOTAL),
            }
            for node in self.cluster(faults)
        ]
        return {"layoutVersion": 1, "nodes": nodes}

    def status_v1(self, faults: frozenset[str]) -> dict[str, Any]:
        """`/v1/status`: the v1 YAML's required fields plus Garage v1.x's real ones."""
        cluster = self.cluster(faults)
        roles = [{"id": n.id, "zone": n.zone, "capacity": n.capacity, "tags": []}
                 for n in cluster]
        nodes = [
            {
                "id": node.id, "role": role, "addr": node.addr if node.is_up else None,
                "hostname": node.hostname, "isUp": node.is_up,
                "lastSeenSecsAgo": node.last_seen_secs_ago, "draining": False,
                "dataPartition": self._free(node.data_available, DATA_TOTAL),
                "metadataPartition": self._free(node.meta_available, META_TOTAL),
            }
            for node, role in zip(cluster, roles, strict=True)
        ]
        return {
            "node": cluster[0].id,
            "garageVersion": cluster[0].version,
            "garageFeatures": FEATURES,
            "rustVersion": RUST_VERSION,
            "dbEngine": "LMDB (using Heed crate)",
            "layoutVersion": 1,
            "nodes": nodes,
            "knownNodes": [
                {"id": n.id, "addr": n.addr, "isUp": n.is_up,
                 "lastSeenSecsAgo": n.last_seen_secs_ago, "hostname": n.hostname}
                for n in cluster
            ],
            "layout": {"version": 1, "roles": roles, "stagedRoleChanges": []},
        }

    def node_info(self, faults: frozenset[str], which: str) -> Response:
        """GetNodeInfo: `self`, `*` or a node id; down nodes land in the `error` map."""
        cluster = self.cluster(faults)
        if which == "self":
            chosen = cluster[:1]
        elif which == "*":
            chosen = cluster
        else:
            chosen = [n for n in cluster if n.id == which]
            if not chosen:
                return self._error(400, "InvalidRequest", f"Bad request: node {which} unknown",
                                   "/v2/GetNodeInfo")
        success: dict[str, Any] = {}
        error: dict[str, str] = {}
        for node in chosen:
            if node.is_up:
                success[node.id] = {"nodeId": node.id, "garageVersion": node.version,
                                    "garageFeatures": FEATURES, "rustVersion": RUST_VERSION,
                                    "dbEngine": "LMDB (using Heed crate)"}
            else:
                error[node.id] = "Remote error: timeout"
        return self._json({"success": success, "error": error})

    # -- HTTP ---------------------------------------------------------------------------------

    def _json(self, data: Any, status: int = 200) -> Response:
        return json_response(data, status, content_type="application/json", pretty=True)

    def _error(self, status: int, code: str, message: str, path: str) -> Response:
        return self._json({"code": code, "message": message, "region": self.region,
                           "path": path}, status)

    def _authorized(self, req: Request) -> str | None:
        """None when the bearer token matches, else Garage's refusal message."""
        header = req.header("Authorization")
        if header is None:
            return "Forbidden: Authorization token must be provided"
        given = header.strip()
        if not given.startswith("Bearer "):
            return "Forbidden: Invalid Authorization header"
        if not hmac.compare_digest(given[7:].strip().encode(), self.token.encode()):
            return "Forbidden: Invalid bearer token"
        return None

    def _health_text(self, faults: frozenset[str]) -> Response:
        status = self.health(faults)["status"]
        detail = "/v2/GetClusterHealth" if self.api != "v1" else "/v1/health"
        text, code = {
            "healthy": ("Garage is fully operational", 200),
            "degraded": ("Garage is operational but some storage nodes are unavailable", 200),
            "unavailable": ("Quorum is not available for some/all partitions, reads and writes "
                            "will fail", 503),
        }[status]
        return text_response(
            f"{text}\nConsult the full health check API endpoint at {detail} for more details\n",
            code, content_type="text/plain")

    def metrics(self, req: Request, faults: frozenset[str]) -> Response:
        """`GET /metrics` as Garage exports it (OpenTelemetry names with dots as underscores;
        doc/book/reference-manual/monitoring.md, src/block/metrics.rs,
        src/rpc/system_metrics.rs), for the answering node. Open unless `metrics_token` is set
        (Garage's admin `metrics_token`), then a bearer token."""
        if self.metrics_token is not None:
            given = (req.header("Authorization") or "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), self.metrics_token.encode()):
                return text_response("Forbidden: Invalid bearer token\n", 403)
        node = self.cluster(faults)[0]
        rows = [
            ("block_resync_queue_length", "gauge", "", 250_000 if "resync-behind" in faults else 3),
            ("block_resync_errored_blocks", "gauge", "", 12 if "blocks-erroring" in faults else 0),
            ("block_corruption_counter", "counter", "", 2 if "blocks-corrupt" in faults else 0),
            ("garage_local_disk_avail", "gauge", '{volume="data"}', node.data_available),
            ("garage_local_disk_total", "gauge", '{volume="data"}', DATA_TOTAL),
            ("garage_local_disk_avail", "gauge", '{volume="metadata"}', node.meta_available),
            ("garage_local_disk_total", "gauge", '{volume="metadata"}', META_TOTAL),
            ("garage_build_info", "counter", f'{{version="{node.version}"}}', 1),
        ]
        lines: list[str] = []
        for name, kind, labels, value in rows:
            if f"# TYPE {name} " not in "\n".join(lines):
                lines.append(f"# TYPE {name} {kind}")
            lines.append(f"{name}{labels} {value}")
        return text_response("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        path = req.path
        if path == "/metrics":
            return self.metrics(req, faults)
        if path == "/health":
            return self._health_text(faults) if req.method in ("GET", "HEAD") else (
                method_not_allowed())
        v1 = self.api in ("v1", "both") and path in ("/v1/health", "/v1/status")
        v2 = self.api in ("v2", "both") and path in (
            "/v2/GetClusterHealth", "/v2/GetClusterStatus", "/v2/GetNodeInfo")
        if not (v1 or v2):
            return self._error(400, "InvalidRequest", f"Bad request: unknown API endpoint "
                               f"{req.method} {path}", path)
        refusal = self._authorized(req)
        if refusal is not None:
            return self._error(self.auth_failure_status, "AccessDenied", refusal, path)
        if req.method not in ("GET", "HEAD"):
            return method_not_allowed("GET")
        if path in ("/v1/health", "/v2/GetClusterHealth"):
            return self._json(self.health(faults))
        if path == "/v2/GetClusterStatus":
            return self._json(self.status_v2(faults))
        if path == "/v1/status":
            return self._json(self.status_v1(faults))
        return self.node_info(faults, req.arg("node") or "self")
