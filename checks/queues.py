"""fedi.queues: is the service's background work keeping up? (per Mastodon, PeerTube, Pixelfed)

Federation is background work: deliveries, incoming activities and media all wait in a job
queue, and a queue hours behind looks healthy from outside. Each service exposes its queue
differently; every path and name below was checked in the project's source:

- Mastodon (4.3+) ships the prometheus_exporter gem behind MASTODON_PROMETHEUS_EXPORTER_ENABLED;
  with MASTODON_PROMETHEUS_EXPORTER_SIDEKIQ_DETAILED_METRICS=true its Sidekiq processes report
  per-queue `sidekiq_queue_latency_seconds{queue}` and `sidekiq_queue_backlog{queue}`
  (PrometheusExporter::Instrumentation::SidekiqQueue) and `sidekiq_stats_retry_size`,
  `sidekiq_stats_dead_size`, `sidekiq_stats_enqueued`, `sidekiq_stats_processes_size`
  (SidekiqStats): mastodon config/initializers/sidekiq.rb; names from the gem's
  lib/prometheus_exporter/server/sidekiq_queue_collector.rb and sidekiq_stats_collector.rb.
  Mastodon's only other view of Sidekiq is the /sidekiq web UI behind an admin browser login,
  so the exporter (`metrics_url`) is the way in.
- PeerTube: `GET /api/v1/jobs/{state}` (state waiting, failed, ...; `start`, `count` <= 100,
  `sort` createdAt or -createdAt) with an admin's OAuth bearer token (UserRight.MANAGE_JOBS),
  answering `{"total", "data": [{"id", "state", "type", "error", "createdAt", ...}]}`:
  server/core/controllers/api/jobs.ts, support/doc/api/openapi.yaml (getJobs).
- Pixelfed runs Laravel Horizon at /horizon (config/horizon.php `path`); its JSON API
  `GET /horizon/api/stats` (`status` running|paused|inactive, `failedJobs`, `processes`,
  `wait` {queue: seconds}, `periods`) and `GET /horizon/api/masters` (master supervisors and
  their supervisors' `status`): laravel/horizon routes/web.php, DashboardStatsController.php,
  MasterSupervisorController.php. Pixelfed's viewHorizon gate admits logged-in admins only
  (app/Providers/HorizonServiceProvider.php), hence `admin_cookie`.

Thresholds are `[queues]` settings (watchtower.config.QueueSettings, which cites their sources).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from watchtower.config import QueueSettings, Service
from watchtower.model import FEDI_KINDS, Findings, Target, TargetKind, Verdict
from watchtower.parsers import promtext
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext, observed_at, reveal
from watchtower.probe.registry import register

from .common import HttpAnswer, answer_problem, fetch, origin
from .scrape import bearer, samples_of, scrape

SIDEKIQ_METRICS = ("sidekiq_queue_latency_seconds", "sidekiq_queue_backlog",
                   "sidekiq_stats_retry_size", "sidekiq_stats_dead_size",
                   "sidekiq_stats_enqueued", "sidekiq_stats_processes_size")
PEERTUBE_PAGE = 100  # the API's maximum `count`


def limits(queues: QueueSettings) -> dict[str, Any]:
    """The thresholds in force, recorded with the facts so the judgement stays pure."""
    return queues.model_dump()


def horizon_base(service: Service) -> str:
    return (service.admin_url or origin(service.base_url) + "/horizon").rstrip("/")


# -- gathering -----------------------------------------------------------------------------------


def gather_mastodon(ctx: ProbeContext, service: Service) -> Facts:
    return {"metrics": scrape(ctx, service.metrics_url or "", SIDEKIQ_METRICS,
                              service.metrics_token)}


class JobsPage(HttpAnswer, total=False):
    """One page of PeerTube's job list: the answer without its JSON, the total it reports
    and the jobs it shows (type, creation time, the start of the error)."""

    total: Any
    jobs: list[dict[str, Any]]


def _peertube_page(ctx: ProbeContext, base: str, state: str, sort: str,
                   auth: dict[str, str]) -> HttpAnswer | JobsPage:
    url = (f"{base}/api/v1/jobs/{state}?start=0&count={PEERTUBE_PAGE}&sort={sort}")
    fetched, _ = fetch(ctx, url, headers=auth, want_json=True, follow=False)
    doc = fetched.pop("json", None)
    if isinstance(doc, dict):
        jobs = [j for j in doc.get("data") or [] if isinstance(j, dict)]
        page: JobsPage = {
            **fetched, "total": doc.get("total"),
            "jobs": [{"type": j.get("type"), "createdAt": j.get("createdAt"),
                      "error": str(j.get("error") or "")[:200] or None} for j in jobs]}
        return page
    return fetched


def gather_peertube(ctx: ProbeContext, service: Service) -> Facts:
    base = origin(service.base_url)
    auth = bearer(service.admin_token, "admin_token")
    return {"waiting": _peertube_page(ctx, base, "waiting", "createdAt", auth),
            "failed": _peertube_page(ctx, base, "failed", "-createdAt", auth)}


def gather_pixelfed(ctx: ProbeContext, service: Service) -> Facts:
    base = horizon_base(service)
    headers = {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"}
    if service.admin_cookie is not None:
        headers["Cookie"] = reveal(service.admin_cookie, "admin_cookie")
    stats, _ = fetch(ctx, f"{base}/api/stats", headers=headers, want_json=True, follow=False)
    masters, _ = fetch(ctx, f"{base}/api/masters", headers=headers, want_json=True,
                       follow=False)
    return {"stats": stats, "masters": masters}


GATHER = {"mastodon": gather_mastodon, "peertube": gather_peertube, "pixelfed": gather_pixelfed}


# -- judging -------------------------------------------------------------------------------------


def _latency(f: Findings, what: str, seconds: float, lim: dict[str, Any]) -> None:
    if seconds >= lim["latency_fail"]:
        f.fail(f"{what} {seconds:.0f} s behind (fail at {lim['latency_fail']:.0f} s)")
    elif seconds >= lim["latency_warn"]:
        f.warn(f"{what} {seconds:.0f} s behind (warn at {lim['latency_warn']:.0f} s)")


def _refused(f: Findings, fetched: dict[str, Any], what: str) -> bool:
    """A refused credential or an unusable answer: the probe cannot judge (error)."""
    if fetched.get("status") in (401, 403):
        f.error(f"{what} refused the credentials (HTTP {fetched['status']})")
        return True
    problem = answer_problem(fetched, what)
    if problem:
        f.error(problem)
        return True
    return False


def judge_mastodon(facts: Facts, f: Findings, lim: dict[str, Any]) -> str:
    metrics = facts.get("metrics") or {}
    if _refused(f, metrics, "Mastodon's Prometheus exporter"):
        return ""
    samples = samples_of(metrics)
    latency = promtext.by_label(samples, "sidekiq_queue_latency_seconds", "queue")
    backlog = promtext.by_label(samples, "sidekiq_queue_backlog", "queue")
    if not latency:
        f.error("the exporter reports no sidekiq_queue_latency_seconds: set "
                "MASTODON_PROMETHEUS_EXPORTER_SIDEKIQ_DETAILED_METRICS=true")
        return ""
    for queue, seconds in sorted(latency.items(), key=lambda kv: -kv[1]):
        _latency(f, f"Sidekiq queue {queue} ({backlog.get(queue, 0):.0f} jobs)", seconds, lim)
    dead = promtext.total(samples, "sidekiq_stats_dead_size")
    retry = promtext.total(samples, "sidekiq_stats_retry_size")
    if dead is not None and dead >= lim["dead_jobs_warn"]:
        f.warn(f"{dead:.0f} dead jobs (Sidekiq drops the oldest past 10,000)")
    if retry is not None and lim.get("retry_jobs_warn") and retry >= lim["retry_jobs_warn"]:
        f.warn(f"{retry:.0f} jobs waiting for a retry")
    worst = max(latency, key=lambda q: latency[q])
    return (f"{len(latency)} Sidekiq queues, worst {worst} {latency[worst]:.0f} s; "
            f"retry {retry if retry is None else int(retry)}, "
            f"dead {dead if dead is None else int(dead)}")


def _by_type(jobs: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for job in jobs:
        if isinstance(job, dict):
            out[str(job.get("type"))] = out.get(str(job.get("type")), 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _age(created: Any, now: dt.datetime) -> float | None:
    try:
        when = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (now - when).total_seconds() if when.tzinfo else None


def judge_peertube(facts: Facts, f: Findings, lim: dict[str, Any]) -> str:
    waiting, failed = facts.get("waiting") or {}, facts.get("failed") or {}
    if _refused(f, waiting, "PeerTube's jobs API") or _refused(f, failed, "PeerTube's jobs API"):
        return ""
    oldest = (waiting.get("jobs") or [None])[0]
    age = _age(oldest.get("createdAt"), observed_at(facts)) if isinstance(oldest, dict) else None
    if age is not None and isinstance(oldest, dict):
        _latency(f, f"oldest waiting job ({oldest.get('type')})", age, lim)
    failed_total = failed.get("total") if isinstance(failed.get("total"), int) else 0
    kinds = _by_type(failed.get("jobs") or [])
    if failed_total >= lim["failed_jobs_warn"]:
        shown = ", ".join(f"{k} {n}" for k, n in list(kinds.items())[:4])
        errors = [j.get("error") for j in failed.get("jobs") or [] if isinstance(j, dict)]
        last = next((e for e in errors if e), None)
        f.warn(f"{failed_total} failed jobs ({shown})" + (f"; latest: {last}" if last else ""))
    waiting_total = waiting.get("total")
    age_text = f", oldest {age:.0f} s" if age is not None else ""
    return f"{waiting_total} jobs waiting{age_text}; {failed_total} failed"


def judge_pixelfed(facts: Facts, f: Findings, lim: dict[str, Any]) -> str:
    stats, masters = facts.get("stats") or {}, facts.get("masters") or {}
    if _refused(f, stats, "Horizon's stats API"):
        return ""
    raw = stats.get("json")
    doc: dict[str, Any] = raw if isinstance(raw, dict) else {}
    status = doc.get("status")
    if status == "inactive":
        f.fail("Horizon is not running (no master supervisor): no job is processed")
    elif status == "paused":
        f.fail("Horizon is paused: no job is processed")
    elif status == "running" and doc.get("processes") == 0:
        f.fail("Horizon runs no worker process")
    elif status != "running":
        f.error(f"Horizon reports an unknown status {status!r}")
    masters_doc = masters.get("json")
    for master in (masters_doc.values() if isinstance(masters_doc, dict) else []):
        for sup in (master.get("supervisors") or []) if isinstance(master, dict) else []:
            if isinstance(sup, dict) and sup.get("status") not in ("running", None):
                f.warn(f"supervisor {sup.get('name')} is {sup.get('status')}")
    wait = doc.get("wait")
    for queue, seconds in (wait.items() if isinstance(wait, dict) else []):
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            _latency(f, f"Horizon queue {queue}", float(seconds), lim)
    failed = doc.get("failedJobs")
    if isinstance(failed, int) and failed >= lim["failed_jobs_warn"]:
        periods = doc.get("periods")
        minutes = periods.get("failedJobs") if isinstance(periods, dict) else None
        window = f" in the last {minutes} minutes" if minutes else ""
        f.warn(f"{failed} failed jobs{window}")
    return f"Horizon {status}, {doc.get('processes')} processes, {failed} failed jobs"


JUDGE = {"mastodon": judge_mastodon, "peertube": judge_peertube, "pixelfed": judge_pixelfed}


@register
class FediQueues(Check):
    meta = CheckMeta(
        id="fedi.queues",
        needs=("fedi.health",),
        family="fedi",
        title="Background job queues keep up: latency, backlog, failed and dead jobs",
        query=(
            "Mastodon: Sidekiq gauges of its Prometheus exporter (`metrics_url`); PeerTube: "
            "`/api/v1/jobs/{waiting,failed}` (admin token); Pixelfed: Horizon `/horizon/api/stats`"
            " and `/api/masters` (admin session)"
        ),
        verdicts=(
            "fail Horizon inactive or paused or without workers; warn/fail queue latency (oldest "
            "waiting job, Horizon wait) at `[queues] latency_warn`/`latency_fail` (30/120 s); warn"
            " failed jobs >= `failed_jobs_warn`, Sidekiq dead set >= `dead_jobs_warn`; `error` "
            "when the credentials are refused"
        ),
        applies_to=FEDI_KINDS,
        interval=300,
        timeout=20,
        standards=("Mastodon Prometheus exporter (Sidekiq)", "PeerTube REST API GET /jobs/{state}",
                   "Laravel Horizon /horizon/api/stats, /api/masters"),
    )

    def applies(self, target: Target) -> bool:
        spec = target.spec
        if target.kind == TargetKind.MASTODON:
            return spec.metrics_url is not None
        if target.kind == TargetKind.PEERTUBE:
            return spec.admin_token is not None
        return target.kind == TargetKind.PIXELFED and (
            spec.admin_cookie is not None or spec.admin_url is not None)

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        service: Service = target.spec
        facts = GATHER[service.kind](ctx, service)
        return {"kind": service.kind, **facts, "limits": limits(ctx.fleet.queues)}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        lim = {**QueueSettings().model_dump(), **(facts.get("limits") or {})}
        judge = JUDGE.get(str(facts.get("kind")))
        if judge is None:
            f.error(f"no queue judgement for kind {facts.get('kind')!r}")
            return f.verdict("")
        return f.verdict(judge(facts, f, lim))
