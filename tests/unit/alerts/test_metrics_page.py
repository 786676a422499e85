"""/metrics content: families, labels, evidence gauges, cache, basic auth (WSGI, no socket)."""

from __future__ import annotations

import base64
import datetime as dt
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.unit.alerts.helpers import T0, fleet, minutes, result, store
from watchtower.alerting.processor import AlertProcessor
from watchtower.metrics import MetricsApp, MetricsPage
from watchtower.model import gauges_of
from watchtower.probe.runtime import RuntimeStats


def seeded(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = store(tmp_path)
    proc = AlertProcessor(s, fleet())
    leaf = {"leaf": {"not_after": "2026-10-26T00:00:00+00:00"}}
    batch = [
        result("fail", T0, target='we"ird\\name'),
        result("ok", T0, check="web.tls.certificate", family="web", target="a.test:443",
               evidence=leaf),
        result("fail", T0, check="drift.version", family="drift", target="social.a.test"),
    ]
    for i in range(3):
        rs = [result(r.status, T0 + minutes(i), check=r.check, family=r.family,
                     target=r.target.name, evidence=r.evidence) for r in batch]
        s.record(rs)
        proc.process(rs, now=rs[0].at)
    return s


def samples(text: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def test_families_and_labels(tmp_path: Path) -> None:
    page = MetricsPage(seeded(tmp_path), cache_seconds=0, max_stale=0)
    found = samples(page.render().decode())
    status = [(x.labels["check"], x.labels["target"], x.labels["status"], x.value)
              for x in found["watchtower_check_status"] if x.value == 1]
    assert ("dns.ns.count", 'we"ird\\name', "fail", 1.0) in status  # escaped and parsed back
    assert len(found["watchtower_check_status"]) == 3  # one series per pair: its status
    last = {x.labels["check"]: x.value for x in found["watchtower_check_last_run_timestamp_seconds"]}
    assert last["dns.ns.count"] == (T0 + minutes(2)).timestamp()
    (cert,) = found["watchtower_certificate_expiry_timestamp_seconds"]
    assert cert.labels == {"check": "web.tls.certificate", "family": "web", "target": "a.test:443"}
    assert cert.value == dt.datetime(2026, 10, 26, tzinfo=dt.UTC).timestamp()
    (drift,) = found["watchtower_drift_detected"]
    assert drift.value == 1
    firing = {x.labels["family"]: x.value for x in found["watchtower_alerts_firing"]}
    assert firing == {"dns": 1, "drift": 1, "web": 0}
    assert found["watchtower_build_info"][0].labels["version"]
    outbox = {x.labels["state"]: x.value for x in found["watchtower_notification_outbox"]}
    assert outbox == {"pending": 0, "sent": 0, "failed": 0}  # no channels configured


def test_evidence_gauges_need_no_alerting(tmp_path: Path) -> None:
    """Gauges come from what the store recorded: `watchtower check` (no alert processor)
    feeds /metrics as `watchtower run` does; a gauge the next result lacks is gone."""
    s = store(tmp_path)
    page = MetricsPage(s, cache_seconds=0, max_stale=0)
    ev = {"metrics": {"rrsig_expiry_timestamp_seconds": 1.8e9}}
    s.record([result("ok", T0, check="dns.dnssec.expiry", evidence=ev)])
    (gauge,) = samples(page.render().decode())["watchtower_rrsig_expiry_timestamp_seconds"]
    assert (gauge.labels["target"], gauge.value) == ("bravo.test", 1.8e9)
    s.record([result("ok", T0 + minutes(1), check="dns.dnssec.expiry",
                     evidence={"metrics": {"rrsig_expiry_timestamp_seconds": 1.9e9}})])
    (gauge,) = samples(page.render().decode())["watchtower_rrsig_expiry_timestamp_seconds"]
    assert gauge.value == 1.9e9  # updated in place
    s.record([result("error", T0 + minutes(2), check="dns.dnssec.expiry", evidence={})])
    assert "watchtower_rrsig_expiry_timestamp_seconds" not in samples(page.render().decode())


def test_scheduler_figures(tmp_path: Path) -> None:
    runtime = RuntimeStats()
    runtime.sweep_done("every:60s", 1.5)
    runtime.lag["every:60s"] = 0.25
    page = MetricsPage(store(tmp_path), runtime, cache_seconds=0, max_stale=0)
    found = samples(page.render().decode())
    assert found["watchtower_scheduler_lag_seconds"][0].value == 0.25
    assert found["watchtower_sweep_duration_seconds"][0].value == 1.5


def test_render_is_cached_for_a_moment(tmp_path: Path) -> None:
    s = seeded(tmp_path)
    page = MetricsPage(s, cache_seconds=60)
    first = page.render()
    s.record([result("ok", T0 + minutes(9), target="new.test")])
    assert page.render() is first
    page.cache_seconds = page.max_stale = 0
    assert b'target="new.test"' in page.render()


def test_a_stale_page_is_served_while_the_next_renders(tmp_path: Path) -> None:
    s = seeded(tmp_path)
    page = MetricsPage(s, cache_seconds=0, max_stale=60)
    first = page.render()
    s.record([result("ok", T0 + minutes(9), target="new.test")])
    assert page.render() is first  # at once, and a background render starts
    deadline = time.monotonic() + 10
    while b'target="new.test"' not in page.render() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b'target="new.test"' in page.render()


def test_gauge_convention() -> None:
    assert gauges_of("x", {"metrics": {"rrsig_expiry_timestamp_seconds": 5, "NaN": 1,
                                       "nan_value": float("nan"), "s": "text"}}) == {
        "rrsig_expiry_timestamp_seconds": 5.0}
    assert gauges_of("mail.smtp.certificate", {"leaf": {"not_after": "1970-01-02T00:00:00"}}) == {
        "certificate_expiry_timestamp_seconds": 86400.0}
    assert gauges_of("web.hsts", {"leaf": {"not_after": "1970-01-02T00:00:00"}}) == {}


def call(app: MetricsApp, path: str, auth: str | None = None) -> tuple[str, bytes]:
    seen: dict[str, str] = {}
    env = {"PATH_INFO": path}
    if auth is not None:
        env["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(auth.encode()).decode()

    def start(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    body = b"".join(app(env, start))
    return seen["status"], body


def test_basic_auth(tmp_path: Path) -> None:
    app = MetricsApp(MetricsPage(store(tmp_path)), ("prometheus", "pa:ss"))
    assert call(app, "/metrics")[0].startswith("401")
    assert call(app, "/metrics", "prometheus:wrong")[0].startswith("401")
    assert call(app, "/metrics", "other:pa:ss")[0].startswith("401")
    status, body = call(app, "/metrics", "prometheus:pa:ss")
    assert status.startswith("200") and b"watchtower_build_info" in body
    assert call(app, "/-/healthy")[0].startswith("200")  # liveness needs no secret
    assert call(app, "/other")[0].startswith("404")


def test_a_thousand_pairs_render_fast(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.record([result("ok", T0, check=f"c.{i % 40}", target=f"d{i // 40}.test") for i in range(1000)])
    page = MetricsPage(s, cache_seconds=0, max_stale=0)
    started = time.perf_counter()
    body = page.render()
    assert time.perf_counter() - started < 0.5
    assert body.count(b"\nwatchtower_check_status{") == 1000
