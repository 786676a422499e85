"""storage.* checks (per Garage cluster): admin-API health, node status, an S3 round trip.

The admin API is probed at v2 first (`/v2/GetClusterHealth`, `/v2/GetClusterStatus`) and at v1
(`/v1/health`, `/v1/status`) when the node does not know v2 (Garage before 2.0 answers 400
"unknown API endpoint"). The bearer token is read from its secret at probe time and never enters
facts, evidence or logs.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from watchtower.config import Service
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.parsers import promtext
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext, reveal
from watchtower.probe.registry import register

from .common import HttpAnswer, answer_problem, fetch
from .scrape import samples_of, scrape

DISK_FREE_WARN = 0.10
DISK_FREE_FAIL = 0.05
#: Garage's exported names (doc/book/reference-manual/monitoring.md; src/block/metrics.rs for
#: block.corruption_counter, which the manual does not list; src/rpc/system_metrics.rs for the
#: per-volume disk gauges). OpenTelemetry's exporter writes the dots as underscores; an
#: edition of the manual prefixes the block metrics with `garage_`, which the parser folds.
BLOCK_METRICS = ("block_resync_queue_length", "block_resync_errored_blocks",
                 "block_corruption_counter", "garage_local_disk_avail", "garage_local_disk_total")
CANARY_PREFIX = "watchtower-canary/"


class AdminAnswer(HttpAnswer, total=False):
    """An admin API answer; `v2_answer` is the status of the v2 endpoint when the v1 twin
    answered in its place."""

    v2_answer: int | None


class PlainAnswer(HttpAnswer, total=False):
    """The plain-text `/health` answer, with the start of its body."""

    text: str


def admin_get(ctx: ProbeContext, service: Service, v2: str, v1: str
              ) -> HttpAnswer | AdminAnswer:
    """GET a v2 admin endpoint, falling back to its v1 twin when v2 is unknown."""
    base = (service.admin_url or "").rstrip("/")
    auth = {"Authorization": f"Bearer {reveal(service.admin_token, 'admin_token')}"}
    fetched, _ = fetch(ctx, base + v2, headers=auth, want_json=True, follow=False)
    if fetched.get("status") in (400, 404):
        first = fetched
        fetched, _ = fetch(ctx, base + v1, headers=auth, want_json=True, follow=False)
        fallback: AdminAnswer = {**fetched, "v2_answer": first.get("status")}
        return fallback
    return fetched


class GarageCheck(Check):
    def applies(self, target: Target) -> bool:
        return target.kind in self.meta.applies_to and bool(target.spec.admin_url)


def _auth_error(f: Findings, fetched: dict[str, Any]) -> bool:
    if fetched.get("status") in (401, 403):
        f.error(f"admin API refused the token (HTTP {fetched['status']}): check admin_token")
        return True
    return False


@register
class Health(GarageCheck):
    meta = CheckMeta(
        id="storage.health",
        family="storage",
        title="Garage cluster healthy (write quorum, all partitions fully replicated)",
        query="admin `/health`, `/v2/GetClusterHealth` (or v1 `/v1/health`)",
        verdicts="fail unavailable; warn degraded, partitionsAllOk false",
        applies_to=(TargetKind.GARAGE,),
        interval=120,
        timeout=15,
        standards=("Garage admin API v2 GetClusterHealth", "Garage admin API v1 /health"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        service: Service = target.spec
        plain, resp = fetch(ctx, (service.admin_url or "").rstrip("/") + "/health",
                            follow=False, max_body=16 * 1024)
        if resp is not None:
            with_text: PlainAnswer = {
                **plain, "text": resp.body.decode("utf-8", errors="replace")[:300]}
            plain = with_text
        return {"health": plain,
                "cluster": admin_get(ctx, service, "/v2/GetClusterHealth", "/v1/health")}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        plain = facts.get("health") or {}
        cluster = facts.get("cluster") or {}
        if plain.get("status") == 503:
            f.fail("/health answers 503: write quorum lost for some partitions")
        if _auth_error(f, cluster):
            return f.verdict("")
        problem = answer_problem(cluster, "cluster health")
        doc = cluster.get("json")
        if problem or not isinstance(doc, dict):
            f.fail(problem or "cluster health is not a JSON object")
            return f.verdict("")
        status = doc.get("status")
        parts, all_ok = doc.get("partitions"), doc.get("partitionsAllOk")
        if status == "unavailable":
            f.fail(f"cluster unavailable: quorum on {doc.get('partitionsQuorum')}/{parts} "
                   "partitions")
        elif status == "degraded":
            f.warn(f"cluster degraded: {doc.get('storageNodesOk')}/{doc.get('storageNodes')} "
                   "storage nodes up")
        elif status != "healthy":
            f.fail(f"unknown cluster status {status!r}")
        if isinstance(parts, int) and isinstance(all_ok, int) and all_ok < parts:
            f.warn(f"only {all_ok}/{parts} partitions have all their replicas reachable")
        return f.verdict(f"healthy: {doc.get('connectedNodes')}/{doc.get('knownNodes')} nodes "
                         f"connected, {all_ok}/{parts} partitions fully replicated")


def _free_fraction(part: Any) -> float | None:
    """available/total of a node's data partition; None when the server's figures are not
    numbers (the JSON is the server's: a string or a list there must not crash the judge)."""
    if not isinstance(part, dict):
        return None
    total, available = part.get("total"), part.get("available", 0)
    if not (isinstance(total, int) and not isinstance(total, bool) and total
            and isinstance(available, int | float) and not isinstance(available, bool)):
        return None
    try:
        return available / total
    except OverflowError:  # JSON integers have no size limit
        return None


@register
class Nodes(GarageCheck):
    meta = CheckMeta(
        id="storage.nodes",
        needs=("storage.health",),
        family="storage",
        title="Every Garage node up, data partitions with free space",
        query="`/v2/GetClusterStatus`",
        verdicts="warn node down or lastSeenSecsAgo large; warn data partition free < 10 %",
        applies_to=(TargetKind.GARAGE,),
        interval=300,
        timeout=15,
        standards=("Garage admin API v2 GetClusterStatus", "Garage admin API v1 /status"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return {"status": admin_get(ctx, target.spec, "/v2/GetClusterStatus", "/v1/status")}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        fetched = facts.get("status") or {}
        if _auth_error(f, fetched):
            return f.verdict("")
        problem = answer_problem(fetched, "cluster status")
        doc = fetched.get("json")
        nodes = doc.get("nodes") if isinstance(doc, dict) else None
        if problem or not isinstance(nodes, list):
            f.fail(problem or "cluster status has no nodes list")
            return f.verdict("")
        for node in nodes:
            if not isinstance(node, dict):
                continue
            name = node.get("hostname") or str(node.get("id", "?"))[:16]
            if not node.get("isUp"):
                seen = node.get("lastSeenSecsAgo")
                ago = "never seen since restart" if seen is None else f"last seen {seen} s ago"
                f.warn(f"node {name} is down ({ago})")
            free = _free_fraction(node.get("dataPartition"))
            if free is not None and free < DISK_FREE_WARN:
                f.warn(f"node {name} data partition {free:.0%} free")
        up = sum(1 for n in nodes if isinstance(n, dict) and n.get("isUp"))
        return f.verdict(f"{up}/{len(nodes)} nodes up, data partitions above "
                         f"{DISK_FREE_WARN:.0%} free")


def metrics_url(service: Service) -> str:
    return service.metrics_url or (service.admin_url or "").rstrip("/") + "/metrics"


def _volume_free(samples: promtext.Samples) -> dict[str, float]:
    """volume -> available/total from garage_local_disk_avail and _total."""
    avail = promtext.by_label(samples, "garage_local_disk_avail", "volume")
    total = promtext.by_label(samples, "garage_local_disk_total", "volume")
    return {v: avail[v] / total[v] for v in sorted(avail) if total.get(v)}


@register
class Blocks(GarageCheck):
    meta = CheckMeta(
        id="storage.blocks",
        needs=("storage.health",),
        family="storage",
        title="Garage blocks resync, none errored or corrupted, data volumes with free space",
        query=(
            "Garage `/metrics`: `block_resync_queue_length`, `block_resync_errored_blocks`, "
            "`block_corruption_counter`, `garage_local_disk_avail`/`_total{volume}`"
        ),
        verdicts=(
            "fail errored blocks > 0 or a volume < 5 % free; warn corruptions > 0, resync queue >="
            " `[queues] resync_queue_warn`, a volume < 10 % free"
        ),
        applies_to=(TargetKind.GARAGE,),
        interval=300,
        timeout=15,
        standards=("Garage /metrics (block_resync_*, block_corruption_counter, "
                   "garage_local_disk_*)",),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        service: Service = target.spec
        return {"metrics": scrape(ctx, metrics_url(service), BLOCK_METRICS,
                                  service.metrics_token),
                "resync_queue_warn": ctx.fleet.queues.resync_queue_warn}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        metrics = facts.get("metrics") or {}
        if _auth_error(f, metrics):
            return f.verdict("")
        problem = answer_problem(metrics, "Garage /metrics")
        samples = samples_of(metrics)
        if problem or "block_resync_queue_length" not in samples:
            f.error(problem or "Garage /metrics has no block_resync_queue_length")
            return f.verdict("")
        errored = promtext.total(samples, "block_resync_errored_blocks") or 0
        corrupt = promtext.total(samples, "block_corruption_counter") or 0
        queued = promtext.total(samples, "block_resync_queue_length") or 0
        if errored:
            f.fail(f"{errored:.0f} blocks could not be resynced (Garage: persistent non-zero "
                   "values mean data is likely lost)")
        if corrupt:
            f.warn(f"{corrupt:.0f} corrupted blocks found since start (resync repairs them "
                   "from other replicas; check the node's disk)")
        limit = facts.get("resync_queue_warn") or 10000
        if queued >= limit:
            f.warn(f"{queued:.0f} blocks queued for resync (warn at {limit})")
        free = _volume_free(samples)
        for volume, share in free.items():
            if share < DISK_FREE_FAIL:
                f.fail(f"{volume} volume {share:.0%} free")
            elif share < DISK_FREE_WARN:
                f.warn(f"{volume} volume {share:.0%} free")
        volumes = ", ".join(f"{v} {s:.0%} free" for v, s in free.items())
        return f.verdict(f"{queued:.0f} blocks queued for resync, none errored; {volumes}")


@register
class RoundTrip(Check):
    meta = CheckMeta(
        id="storage.roundtrip",
        needs=("storage.health",),
        family="storage",
        title="S3 PUT, GET and DELETE of a canary object succeed and return the same bytes",
        query="S3 PUT, GET, DELETE of a canary object in a probe bucket",
        verdicts="fail any step fails or content differs; records latency of each step",
        applies_to=(TargetKind.GARAGE,),
        interval=300,
        timeout=30,
        standards=("Amazon S3 API (PutObject, GetObject, DeleteObject)", "AWS SigV4"),
    )

    def applies(self, target: Target) -> bool:
        spec = target.spec
        return target.kind in self.meta.applies_to and all(
            getattr(spec, k, None) for k in ("s3_endpoint", "s3_bucket", "s3_access_key",
                                             "s3_secret_key"))

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        service: Service = target.spec
        client = ctx.s3.client(service.s3_endpoint or "", service.s3_region,
                               reveal(service.s3_access_key, "s3_access_key"),
                               reveal(service.s3_secret_key, "s3_secret_key"),
                               deadline=ctx.deadline)
        key = f"{CANARY_PREFIX}{uuid.uuid4().hex}"
        payload = f"watchtower canary {time.time():.3f}\n".encode() + os.urandom(1024)
        steps, same = client.roundtrip(service.s3_bucket or "", key, payload)
        return {"endpoint": service.s3_endpoint, "bucket": service.s3_bucket, "key": key,
                "bytes": len(payload), "same": same, "steps": [s.evidence() for s in steps]}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        steps = facts.get("steps") or []
        for step in steps:
            if not step.get("ok"):
                f.fail(f"{step.get('step', '?').upper()} failed: "
                       f"{step.get('error') or 'HTTP ' + str(step.get('status'))}")
        if not any(s.get("step") == "get" for s in steps) and not f.items:
            f.fail("no GET step recorded")
        timing = ", ".join(f"{s.get('step')} {s.get('ms')} ms" for s in steps)
        return f.verdict(f"{facts.get('bytes')} bytes round trip in {facts.get('bucket')}: "
                         f"{timing}")
