"""`/metrics`: a prometheus-client collector that reads current state at scrape time.

Nothing is counted per run in memory: every scrape reads the `state` table (one row per check and
target), so the numbers are right after a restart and cost what one indexed read costs. Labels
are bounded: check id, family, target name and a status from a closed set; never free text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from watchtower import __version__
from watchtower.model import Status
from watchtower.store import Store, aware

STATUSES = [str(s) for s in Status]


class StateCollector(Collector):
    """Exports the store's current state."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        info = InfoMetricFamily("watchtower_build", "watchtower version")
        info.add_metric([], {"version": __version__})
        yield info
        status = GaugeMetricFamily(
            "watchtower_check_status",
            "Current verdict per check and target (1 for the current status, 0 otherwise)",
            labels=["check", "family", "target", "status"])
        last = GaugeMetricFamily("watchtower_check_last_run_timestamp_seconds",
                                 "When the check last ran on the target",
                                 labels=["check", "family", "target"])
        duration = GaugeMetricFamily("watchtower_check_duration_seconds",
                                     "How long the last probe took",
                                     labels=["check", "family", "target"])
        for row in self.store.current():
            labels = [row.check_id, row.family, row.target]
            for s in STATUSES:
                status.add_metric([*labels, s], 1.0 if row.status == s else 0.0)
            last.add_metric(labels, aware(row.last_at).timestamp())
            duration.add_metric(labels, row.duration_ms / 1000.0)
        yield status
        yield last
        yield duration
