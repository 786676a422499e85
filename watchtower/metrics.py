"""`/metrics`: current state read from the store at scrape time, in Prometheus text format.

Nothing is counted per run in memory: every scrape reads the `state` table (one row per check and
target) and a few small tables, so the numbers are right after a restart. Metric names and labels
are an interface (docs/metrics.md); labels are bounded: check id, family, target name, a status
from a closed set, channel and schedule-group names from the config. Never free text, never IPs.

Two renderers, on purpose:
- the per-(check, target) families (status, last run, duration, evidence gauges) are written by
  hand straight from one raw SQL read (watchtower/store/metrics.py). With 1,000 domains x the
  catalog that is ~45,000 pairs and ~300,000 samples; prometheus-client's `generate_latest`
  needs ~1.4 s for 180,000 samples (measured), the hand-written loop a fraction of that
  (bench/bench_metrics.py);
- the small aggregate families (build info, counts, alerts, notification health, remediation
  outcomes, scheduler lag) come from a regular prometheus-client `Collector`, `StateCollector`.
The rendered page is cached for `CACHE_SECONDS`, so several Prometheus replicas scraping at once
cost one render.

Evidence gauges: a check may put numeric gauges in its evidence under `metrics`, e.g.
`{"metrics": {"certificate_expiry_timestamp_seconds": 1.7e9}}`; each is exported as
`watchtower_<name>{check, family, target}`. Names must be snake_case with a base unit suffix.
The store keeps them with every result it records (`watchtower.model.gauges_of`), so they are
exported whether or not alerting runs.
"""

from __future__ import annotations

import base64
import gzip
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector

from watchtower import __version__
from watchtower.model import GAUGE_NAME, Status
from watchtower.model import epoch_seconds as _timestamp
from watchtower.probe.runtime import RuntimeStats
from watchtower.store import FINAL_STATES, OPEN_STATES, Store

log = logging.getLogger(__name__)

STATUSES = tuple(str(s) for s in Status)
CACHE_SECONDS = 1.0
MAX_STALE = 120.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# -- runtime figures that live in the process ------------------------------------------------


# -- the aggregate families (prometheus-client) ---------------------------------------------


class StateCollector(Collector):
    """Small families: build info, counts by family/status, alerts, notifications, scheduler."""

    def __init__(self, store: Store, runtime: RuntimeStats | None = None) -> None:
        self.store = store
        self.runtime = runtime or RuntimeStats()

    def collect(self) -> Iterator[Any]:
        info = InfoMetricFamily("watchtower_build", "watchtower version running")
        info.add_metric([], {"version": __version__})
        yield info
        yield from self._counts()
        yield from self._notifications()
        yield from self._remediations()
        yield from self._scheduler()

    def _counts(self) -> Iterator[Any]:
        checks = GaugeMetricFamily("watchtower_checks", "Number of (check, target) pairs by "
                                   "family and current status", labels=["family", "status"])
        seen = self.store.metrics.status_counts()
        for family in sorted({f for f, _ in seen}):
            for status in STATUSES:
                checks.add_metric([family, status], seen.get((family, status), 0))
        yield checks
        firing = GaugeMetricFamily("watchtower_alerts_firing", "Alerts firing after the failure "
                                   "threshold, by family", labels=["family"])
        silenced = GaugeMetricFamily("watchtower_alerts_silenced", "Alerts whose notices a "
                                     "maintenance window holds back, by family",
                                     labels=["family"])
        for family, n_firing, n_silenced in self.store.metrics.alert_counts():
            firing.add_metric([family], n_firing)
            silenced.add_metric([family], n_silenced)
        yield firing
        yield silenced

    def _notifications(self) -> Iterator[Any]:
        sent = CounterMetricFamily("watchtower_notifications_sent", "Notices a channel "
                                   "accepted", labels=["channel"])
        failed = CounterMetricFamily("watchtower_notification_failures", "Failed delivery "
                                     "attempts", labels=["channel"])
        broken = GaugeMetricFamily("watchtower_notification_channel_broken", "1 when the "
                                   "channel failed permanently or too often in a row",
                                   labels=["channel"])
        last_ok = GaugeMetricFamily("watchtower_notification_last_success_timestamp_seconds",
                                    "When the channel last accepted a notice",
                                    labels=["channel"])
        for channel, n_sent, n_failed, is_broken, last in self.store.metrics.channel_health():
            sent.add_metric([channel], n_sent)
            failed.add_metric([channel], n_failed)
            broken.add_metric([channel], 1 if is_broken else 0)
            if last is not None:
                last_ok.add_metric([channel], _timestamp(last))
        yield sent
        yield failed
        yield broken
        yield last_ok
        pending = GaugeMetricFamily("watchtower_notification_outbox", "Outbox rows by state",
                                    labels=["state"])
        counts = self.store.metrics.outbox_counts()
        for state in ("pending", "sent", "failed"):
            pending.add_metric([state], int(counts.get(state, 0)))
        yield pending

    def _remediations(self) -> Iterator[Any]:
        total = GaugeMetricFamily("watchtower_remediations", "Remediation proposals by "
                                  "remediation id and outcome (state)",
                                  labels=["remediation", "outcome"])
        try:
            counts = self.store.metrics.remediation_counts()
        except Exception as exc:  # a schema older than remediation: nothing to count
            log.debug("remediation counts unavailable: %s", exc)
            counts = {}
        # Every outcome of a known remediation, zeros too: an alert on "failed went up"
        # needs the series to exist before the first failure.
        for rid in sorted({rid for rid, _ in counts}):
            for outcome in OPEN_STATES + FINAL_STATES:
                total.add_metric([rid, outcome], counts.get((rid, outcome), 0))
        yield total

    def _scheduler(self) -> Iterator[Any]:
        rt = self.runtime
        lag = GaugeMetricFamily("watchtower_scheduler_lag_seconds", "Delay between a sweep's "
                                "scheduled and actual start, last run", labels=["group"])
        lag_max = GaugeMetricFamily("watchtower_scheduler_lag_max_seconds", "Largest such "
                                    "delay since start", labels=["group"])
        missed = CounterMetricFamily("watchtower_scheduler_missed_runs", "Runs skipped as "
                                     "later than their misfire grace time", labels=["group"])
        last = GaugeMetricFamily("watchtower_sweep_last_timestamp_seconds", "When the group's "
                                 "last sweep finished", labels=["group"])
        took = GaugeMetricFamily("watchtower_sweep_duration_seconds", "How long the group's "
                                 "last sweep took", labels=["group"])
        with rt.lock:
            for g, v in rt.lag.items():
                lag.add_metric([g], v)
            for g, v in rt.lag_max.items():
                lag_max.add_metric([g], v)
            for g, n in rt.missed.items():
                missed.add_metric([g], n)
            for g, v in rt.sweep_at.items():
                last.add_metric([g], v)
            for g, v in rt.sweep_seconds.items():
                took.add_metric([g], v)
        yield from (lag, lag_max, missed, last, took)


# -- the per-pair families (hand-written exposition) ----------------------------------------


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


class PairRenderer:
    """Renders the per-(check, target) families from two raw reads (state, check_gauge)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._labels: dict[tuple[str, str, str], tuple[str, str]] = {}

    def _label(self, check: str, family: str, target: str) -> tuple[str, str]:
        """('check="..",family=".."', 'target=".."'): labels in sorted order, as
        prometheus-client writes them, so `status` fits between the two halves."""
        key = (check, family, target)
        parts = self._labels.get(key)
        if parts is None:
            parts = (f'check="{_escape(check)}",family="{_escape(family)}"',
                     f'target="{_escape(target)}"')
            self._labels[key] = parts
        return parts

    def render(self) -> str:
        state, gauges = self.store.metrics.pairs()
        if len(self._labels) > 2 * len(state) + 1000:
            self._labels.clear()
        status_lines: list[str] = []
        last_lines: list[str] = []
        duration_lines: list[str] = []
        drift_lines: list[str] = []
        add_status, add_last, add_duration = (status_lines.append, last_lines.append,
                                              duration_lines.append)
        label = self._label
        for check, family, target, status, last_at, seconds in state:
            head, tail = label(check, family, target)
            add_status(f'watchtower_check_status{{{head},status="{status}",{tail}}} 1.0\n')
            add_last(f"watchtower_check_last_run_timestamp_seconds{{{head},{tail}}} "
                     f"{float(last_at)!r}\n")
            add_duration(f"watchtower_check_duration_seconds{{{head},{tail}}} "
                         f"{float(seconds)!r}\n")
            if family == "drift":
                drift_lines.append(f"watchtower_drift_detected{{{head},{tail}}} "
                                   f"{'1.0' if status in ('fail', 'warn') else '0.0'}\n")
        parts = [
            "# HELP watchtower_check_status Current verdict per check and target: one series "
            "labelled with the current status, value 1\n# TYPE watchtower_check_status gauge\n",
            *status_lines,
            "# HELP watchtower_check_last_run_timestamp_seconds When the check last ran on the "
            "target\n# TYPE watchtower_check_last_run_timestamp_seconds gauge\n",
            *last_lines,
            "# HELP watchtower_check_duration_seconds How long the last probe took\n"
            "# TYPE watchtower_check_duration_seconds gauge\n",
            *duration_lines,
            "# HELP watchtower_drift_detected 1 when a drift check finds the running state "
            "differs from the declared one\n# TYPE watchtower_drift_detected gauge\n",
            *drift_lines,
        ]
        current = None
        for name, check, family, target, value in gauges:
            if not GAUGE_NAME.match(name):
                continue
            if name != current:
                current = name
                parts.append(f"# HELP watchtower_{name} Gauge reported by checks in their "
                             f"evidence (docs/metrics.md)\n# TYPE watchtower_{name} gauge\n")
            head, tail = label(check, family, target)
            parts.append(f"watchtower_{name}{{{head},{tail}}} {float(value)!r}\n")
        return "".join(parts)


class MetricsPage:
    """The whole `/metrics` body, rendered at most once per `cache_seconds`.

    Stale-while-revalidate: when the page is older than `cache_seconds` but younger than
    `max_stale`, the scrape gets it at once and a background thread renders the next one, so a
    scrape costs the transfer only, whatever the fleet size, and the data is at most one scrape
    interval (plus one render) old. Older than `max_stale` (no scrape for a while) or never
    rendered: the scrape waits for a fresh render. `max_stale=0` renders every scrape in line.
    """

    def __init__(self, store: Store, runtime: RuntimeStats | None = None, *,
                 cache_seconds: float = CACHE_SECONDS, max_stale: float = MAX_STALE) -> None:
        self.runtime = runtime or RuntimeStats()
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(store, self.runtime))
        self.pairs = PairRenderer(store)
        self.cache_seconds = cache_seconds
        self.max_stale = max_stale
        self.last_render_seconds = 0.0
        self._cached: tuple[float, bytes, bytes] | None = None
        self._render_lock = threading.Lock()
        self._refreshing = threading.Event()

    def _render_now(self) -> tuple[bytes, bytes]:
        with self._render_lock:
            started = time.monotonic()
            body = generate_latest(self.registry) + self.pairs.render().encode()
            # Compressed once per render (Prometheus asks for gzip): ~15x smaller transfers.
            packed = gzip.compress(body, compresslevel=1)
            finished = time.monotonic()
            self.last_render_seconds = finished - started
            # Age counts from the end of a render, so a render slower than cache_seconds does
            # not start the next one at once.
            self._cached = (finished, body, packed)
            return body, packed

    def _refresh_in_background(self) -> None:
        if self._refreshing.is_set():
            return
        self._refreshing.set()

        def work() -> None:
            try:
                self._render_now()
            except Exception as exc:
                log.error("rendering /metrics failed: %s", exc)
            finally:
                self._refreshing.clear()

        threading.Thread(target=work, name="metrics-render", daemon=True).start()

    def render(self) -> bytes:
        """The exposition text (uncompressed)."""
        return self.render_both()[0]

    def render_both(self) -> tuple[bytes, bytes]:
        """(plain, gzip) bodies of the current page."""
        cached = self._cached
        if cached is not None:
            age = time.monotonic() - cached[0]
            if age < self.cache_seconds:
                return cached[1], cached[2]
            if age < self.max_stale:
                self._refresh_in_background()
                return cached[1], cached[2]
        return self._render_now()


# -- the HTTP endpoint ----------------------------------------------------------------------


def _authorized(header: str | None, expected: tuple[str, str] | None) -> bool:
    if expected is None:
        return True
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return (hmac.compare_digest(user.encode(), expected[0].encode())
            & hmac.compare_digest(password.encode(), expected[1].encode()))


class MetricsApp:
    """WSGI app: `/metrics` (optionally behind basic auth), `/-/healthy`."""

    def __init__(self, page: MetricsPage, credentials: tuple[str, str] | None = None) -> None:
        self.page = page
        self.credentials = credentials

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/-/healthy":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"see /metrics\n"]
        if not _authorized(environ.get("HTTP_AUTHORIZATION"), self.credentials):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", 'Basic realm="watchtower"')])
            return [b"unauthorized\n"]
        try:
            plain, packed = self.page.render_both()
        except Exception as exc:
            log.error("rendering /metrics failed: %s", exc)
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"store unavailable\n"]
        headers = [("Content-Type", CONTENT_TYPE), ("Vary", "Accept-Encoding")]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = packed
            headers.append(("Content-Encoding", "gzip"))
        else:
            body = plain
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body]


class _ThreadingServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self._handle, args=(request, client_address),
                                  daemon=True)
        thread.start()

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics %s", format % args)


class MetricsServer:
    """Serves a MetricsApp on host:port in a background thread; `port` is the bound one."""

    def __init__(self, app: Any, listen: str) -> None:  # MetricsApp, or DaemonApp around it
        host, _, port = listen.rpartition(":")
        self.app = app
        self.httpd = make_server(host.strip("[]") or "127.0.0.1", int(port), app,
                                 server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics",
                                        daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def credentials_of(auth: Any) -> tuple[str, str] | None:
    """(user, password) from [metrics] auth, read now (a Secret), or None."""
    if auth is None:
        return None
    return (auth.username, auth.password.reveal())
