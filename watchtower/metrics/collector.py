"""The small aggregate families of /metrics (build info, counts, alerts, notification health,
remediation outcomes, scheduler lag), from a prometheus-client Collector."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector

from watchtower import __version__
from watchtower.model import Status
from watchtower.model import epoch_seconds as _timestamp
from watchtower.probe.runtime import RuntimeStats
from watchtower.store import FINAL_STATES, OPEN_STATES, Store

log = logging.getLogger(__name__)


STATUSES = tuple(str(s) for s in Status)

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
        yield from self._vantages()

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

    def _vantages(self) -> Iterator[Any]:
        """Scale-out (watchtower/scaleout): each vantage's own status per pair beside the
        combined one of `watchtower_check_status`, and when each vantage's agents last beat.
        No series without agents (the single-process default)."""
        status = GaugeMetricFamily("watchtower_vantage_check_status", "1, labelled with the "
                                   "status one vantage saw last for the pair",
                                   labels=["check", "target", "vantage", "status"])
        for check, target, _kind, vantage, seen in self.store.vantages.states():
            status.add_metric([check, target, vantage, seen], 1)
        yield status
        beat = GaugeMetricFamily("watchtower_vantage_agent_last_seen_timestamp_seconds",
                                 "Last heartbeat of any agent of the vantage",
                                 labels=["vantage"])
        for vantage, at in sorted(self.store.vantages.last_seen().items()):
            beat.add_metric([vantage], _timestamp(at))
        yield beat

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
