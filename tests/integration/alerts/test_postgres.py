"""Alert state, outbox and /metrics on PostgreSQL (the SQL of metrics.py is dialect-specific)."""

from __future__ import annotations

import datetime as dt

from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import SQLModel, create_engine

from tests.unit.alerts.helpers import T0, fleet, minutes, result
from watchtower.alerting.processor import AlertProcessor
from watchtower.metrics import MetricsPage
from watchtower.store import Store


def test_alerts_and_metrics_on_postgresql(postgres) -> None:  # type: ignore[no-untyped-def]
    url = postgres.fresh_database_url() if hasattr(postgres, "fresh_database_url") else postgres.url
    drop_everything(url)  # the session's database is shared with other tests: start clean
    s = Store(url)
    try:
        cfg = fleet('[[notifications.email]]\nname = "m"\nhost = "127.0.0.1"\n'
                    'sender = "a@b.c"\nto = ["o@b.c"]\n')
        proc = AlertProcessor(s, cfg)
        leaf = {"leaf": {"not_after": "2030-01-01T00:00:00+00:00"}}
        for i in range(3):
            rs = [result("fail", T0 + minutes(i)),
                  result("ok", T0 + minutes(i), check="web.tls.certificate", family="web",
                         target="a.test:443", evidence=leaf)]
            s.record(rs)
            proc.process(rs, now=rs[0].at)
        assert [a.firing for a in s.alerts.states() if a.check_id == "dns.ns.count"] == [True]
        assert [r.kind for r in s.alerts.outbox()] == ["firing"]
        text = MetricsPage(s, cache_seconds=0, max_stale=0).render().decode()
        values = {(x.name, x.labels.get("check")): x.value
                  for f in text_string_to_metric_families(text) for x in f.samples}
        assert values[("watchtower_check_last_run_timestamp_seconds", "dns.ns.count")] == (
            T0 + minutes(2)).timestamp()
        assert values[("watchtower_certificate_expiry_timestamp_seconds",
                       "web.tls.certificate")] == dt.datetime(2030, 1, 1, tzinfo=dt.UTC).timestamp()
        assert values[("watchtower_check_duration_seconds", "dns.ns.count")] == 0.012
    finally:
        s.close()
        drop_everything(url)  # and leave it clean for them


def drop_everything(url: str) -> None:
    engine = create_engine(url)
    SQLModel.metadata.drop_all(engine)
    engine.dispose()
