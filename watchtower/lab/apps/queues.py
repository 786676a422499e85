"""The job-queue surfaces of the lab's fediverse stand-ins, shaped as the real ones publish them
(see watchtower/checks/queues.py for the source of every path and name):

- Mastodon: the prometheus_exporter page with the SidekiqQueue and SidekiqStats gauges, served
  at `/metrics` on the web host (a real deployment serves it on its own port, 9394);
- PeerTube: `GET /api/v1/jobs/{state}` behind an admin bearer token, `{"total", "data"}`;
- Pixelfed: Laravel Horizon's `/horizon/api/stats` and `/horizon/api/masters` behind an admin
  session cookie (Horizon's Authenticate middleware answers 403 otherwise).

Faults: `queue-behind` (the oldest work waits ten minutes), `jobs-failing` (failed jobs pile up:
40 failed transcodes on PeerTube, 60 on Horizon, 9,500 dead Sidekiq jobs), `horizon-stopped`
(no master supervisor: Horizon is inactive).
"""

from __future__ import annotations

import datetime as dt
import hmac
import time
from typing import Any

from watchtower.lab.apps.common import Fault, Request, Response, json_response, text_response

QUEUE_FAULTS: tuple[Fault, ...] = (
    Fault("queue-behind", "the job queue is ten minutes behind (oldest waiting job 600 s old)"),
    Fault("jobs-failing", "failed jobs pile up (PeerTube transcodes, Horizon, Sidekiq dead set)"),
)
HORIZON_FAULTS: tuple[Fault, ...] = (
    Fault("horizon-stopped", "Horizon has no master supervisor: status inactive"),
)
BEHIND_SECONDS = 600
MASTODON_QUEUES = ("default", "push", "ingress", "mailers", "pull", "scheduler")


def token_ok(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; no expected token means the surface is open (unit tests)."""
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def sidekiq_metrics(faults: frozenset[str]) -> Response:
    """The gem's exposition of SidekiqQueue and SidekiqStats (no prefix: the in-process
    exporter of MASTODON_PROMETHEUS_EXPORTER_LOCAL)."""
    behind = "queue-behind" in faults
    lines = ["# HELP sidekiq_queue_backlog Size of the sidekiq queue.",
             "# TYPE sidekiq_queue_backlog gauge"]
    lines += [f'sidekiq_queue_backlog{{queue="{q}"}} {4000 if behind and q == "push" else 2}'
              for q in MASTODON_QUEUES]
    lines += ["# HELP sidekiq_queue_latency_seconds Latency of the sidekiq queue.",
              "# TYPE sidekiq_queue_latency_seconds gauge"]
    lines += [f'sidekiq_queue_latency_seconds{{queue="{q}"}} '
              f'{BEHIND_SECONDS if behind and q == "push" else 1}' for q in MASTODON_QUEUES]
    dead = 9500 if "jobs-failing" in faults else 12
    for name, value in (("dead_size", dead), ("retry_size", 40), ("enqueued", 12),
                        ("processes_size", 2), ("workers_size", 3)):
        lines += [f"# TYPE sidekiq_stats_{name} gauge", f"sidekiq_stats_{name} {value}"]
    return text_response("\n".join(lines) + "\n",
                         content_type="text/plain; version=0.0.4; charset=utf-8")


def _iso(seconds_ago: float) -> str:
    when = dt.datetime.fromtimestamp(time.time() - seconds_ago, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _job(i: int, state: str, kind: str, seconds_ago: float, error: str | None) -> dict[str, Any]:
    return {"id": str(1000 + i), "state": state, "type": kind, "data": {}, "progress": 0,
            "priority": 100, "error": error, "createdAt": _iso(seconds_ago),
            "processedOn": None, "finishedOn": None}


def peertube_jobs(req: Request, faults: frozenset[str], token: str | None) -> Response:
    """`/api/v1/jobs/{state}`: 401 without a valid token (OAuth2 `authenticate`)."""
    auth = req.header("Authorization") or ""
    if not token_ok(auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ")
                    else None, token):
        return json_response({"code": "invalid_token", "error": "Token is invalid.",
                              "status": 401}, 401)
    state = req.path.rsplit("/", 1)[1]
    jobs: list[dict[str, Any]] = []
    if state == "waiting":
        age = BEHIND_SECONDS if "queue-behind" in faults else 2
        jobs = [_job(0, "waiting", "video-transcoding", age, None),
                _job(1, "waiting", "activitypub-http-broadcast", 1, None)]
    elif state == "failed":
        count = 40 if "jobs-failing" in faults else 3
        jobs = [_job(i, "failed", "video-transcoding" if "jobs-failing" in faults
                     else "activitypub-http-unicast", 60 * i,
                     "Error: ffmpeg exited with code 1: Invalid data found when processing input"
                     if "jobs-failing" in faults else "Error: connect ECONNREFUSED")
                for i in range(count)]
    elif state not in ("active", "completed", "delayed", "paused", "waiting-children",
                       "prioritized"):
        return json_response({"status": 400, "detail": f"Invalid state {state}"}, 400)
    if req.arg("sort") == "-createdAt":
        jobs.sort(key=lambda j: j["createdAt"], reverse=True)
    else:
        jobs.sort(key=lambda j: j["createdAt"])
    count = int(req.arg("count") or 15)
    return json_response({"total": len(jobs), "data": jobs[:count]})


def horizon(req: Request, faults: frozenset[str], cookie: str | None) -> Response | None:
    """Horizon's stats and masters; None for other paths."""
    if req.path not in ("/horizon/api/stats", "/horizon/api/masters"):
        return None
    if not token_ok(req.header("Cookie"), cookie):
        return json_response({"message": "Forbidden"}, 403)
    stopped = "horizon-stopped" in faults
    if req.path == "/horizon/api/masters":
        if stopped:
            return json_response([])
        name = "photos-horizon-1"
        supervisor = {"name": f"{name}:supervisor-1", "master": name, "pid": "2211",
                      "status": "running", "processes": {"redis:default": 2, "redis:inbox": 1},
                      "options": {"queue": "high,default,follow,shared,inbox,feed,low"}}
        return json_response({name: {"name": name, "environment": None, "pid": "2210",
                                     "status": "running", "supervisors": [supervisor]}})
    wait = BEHIND_SECONDS if "queue-behind" in faults else 0
    return json_response({
        "failedJobs": 60 if "jobs-failing" in faults else 0,
        "jobsPerMinute": 12, "pausedMasters": 0,
        "periods": {"failedJobs": 10080, "recentJobs": 60},
        "processes": 0 if stopped else 3,
        "queueWithMaxRuntime": "redis:default", "queueWithMaxThroughput": "redis:inbox",
        "recentJobs": 340, "status": "inactive" if stopped else "running",
        "wait": {"redis:inbox": wait},
    })
