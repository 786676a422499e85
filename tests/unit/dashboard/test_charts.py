"""Chart builders: valid Vega-Lite with the fleet's status colours and the right data."""

from __future__ import annotations

import datetime as dt

from watchtower.dashboards import charts

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _history() -> list[dict]:
    def h(check: str, status: str, first: int, last: int) -> dict:
        return {"check": check, "status": status, "summary": status, "probes": 1,
                "first_at": T0 + dt.timedelta(hours=first),
                "last_at": T0 + dt.timedelta(hours=last), "avg_ms": 10.0 + first,
                "max_ms": 20.0}
    return [h("dns.caa", "ok", 0, 5), h("dns.caa", "fail", 6, 6), h("web.hsts", "warn", 1, 2)]


def test_status_timeline_spans_until_the_next_streak() -> None:
    chart = charts.status_timeline(_history(), now=T0 + dt.timedelta(hours=10))
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["color"]["scale"]["range"] == charts.STATUS_RANGE
    frame = chart.data
    caa = frame[frame["check"] == "dns.caa"].sort_values("from")
    assert list(caa["to"]) == [T0 + dt.timedelta(hours=6), T0 + dt.timedelta(hours=10)]


def test_other_charts_render_to_vega_lite() -> None:
    assert charts.latency_chart(_history()).to_dict()["encoding"]["y"]["field"] == "ms"
    expiry = charts.expiry_chart([{"target": "a.test:443", "check": "web.tls.certificate",
                                   "status": "warn", "days_left": 3.5,
                                   "expires": T0}])
    assert len(expiry.to_dict()["layer"]) == 2  # the bars and the 14-day rule
    sweeps = [{"started_at": T0, "schedule": "every:300s", "state": "done", "total": 10,
               "ok": 7, "warn": 1, "fail": 1, "error": 1},
              {"started_at": T0, "schedule": "every:300s", "state": "running", "total": 10,
               "ok": 0, "warn": 0, "fail": 0, "error": 0}]
    trend = charts.sweep_trend_chart(sweeps)
    assert list(trend.data["problems %"]) == [20.0]  # the unfinished sweep is left out
    points = [{"at": T0, "family": "overall", "score": 50.0}]
    assert charts.score_trend_chart(points).to_dict()["encoding"]["y"]["scale"]["domain"] == [
        0, 100]
    bar = charts.status_bar({"ok": 3, "fail": 1})
    assert list(bar.data["results"]) == [3, 0, 0, 1]
