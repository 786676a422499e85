"""`Store`: the one interface to persistence. Opening one connects, migrates, and gives every
part of watchtower its room:

    store.record(results) / begin_sweep / finish_sweep / current / evidence ...  (results.py)
    store.read_history(...) / spans / history / rollups / probes_stored        (history.py)
    retention.prune(store, policy)                        the raw window, rollups (retention.py)
    store.alerts        alert state, alert flips, outbox, channel health        (alerts.py)
    store.remediation   proposals, audit trail, host locks, known-good systems  (remediation.py)
    store.reports       stored reports and their delivery state                 (reports.py)
    store.dashboard     the dashboard's reads, acknowledgements and audit       (dashboard.py)
    store.heartbeats    heartbeat pings                                         (heartbeats.py)
    store.explanations  comply-or-explain records                               (explanations.py)
    store.metrics       the reads /metrics renders                              (metrics.py)
    store.vantages      deferrals, vantage results, agents (scale-out)          (vantages.py)

Results and history are the store's core and sit on `Store` itself (every sweep, report and
page uses them); the other concerns are sub-objects, so a call site names its concern. Nothing
outside watchtower/store/ opens a session or writes SQL (tests/unit/test_store_boundary.py).
"""

from __future__ import annotations

from watchtower.store.alerts import AlertStore
from watchtower.store.dashboard import DashboardStore
from watchtower.store.db import Database
from watchtower.store.explanations import ExplanationStore
from watchtower.store.heartbeats import HeartbeatStore
from watchtower.store.history import HistoryReads
from watchtower.store.metrics import MetricsReads
from watchtower.store.migrations import migrate, schema_version
from watchtower.store.remediation import RemediationStore
from watchtower.store.reports import ReportStore
from watchtower.store.results import Results
from watchtower.store.vantages import VantageStore


class Store(Results, HistoryReads):
    """Opens the database (SQLite file or PostgreSQL URL), migrates it, and holds every room."""

    def __init__(self, url: str, *, retries: int = 8, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.db = Database(url, retries=retries, busy_timeout=busy_timeout)
        #: For tests and benches that seed or inspect the database directly; watchtower's own
        #: modules outside the store never use it.
        self.engine = self.db.engine
        self._evidence_ids: dict[str, int] = {}
        self.alerts = AlertStore(self.db)
        self.remediation = RemediationStore(self.db)
        self.reports = ReportStore(self.db)
        self.dashboard = DashboardStore(self.db)
        self.heartbeats = HeartbeatStore(self.db)
        self.explanations = ExplanationStore(self.db)
        self.metrics = MetricsReads(self.db)
        self.vantages = VantageStore(self.db)
        self.migrate()

    def migrate(self) -> int:
        return migrate(self.db)

    def schema_version(self) -> int:
        return schema_version(self.db)

    def close(self) -> None:
        self.db.close()
