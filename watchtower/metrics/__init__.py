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

from watchtower.metrics.collector import StateCollector
from watchtower.metrics.page import CACHE_SECONDS, CONTENT_TYPE, MAX_STALE, MetricsPage
from watchtower.metrics.pairs import PairRenderer
from watchtower.metrics.server import MetricsApp, MetricsServer, credentials_of

__all__ = ["CACHE_SECONDS", "CONTENT_TYPE", "MAX_STALE", "MetricsApp", "MetricsPage",
           "MetricsServer", "PairRenderer", "StateCollector", "credentials_of"]
